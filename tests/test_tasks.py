"""Synthetic tasks: deterministic data, correct answers, exact match equal to greedy decoding."""
import pytest
import torch

from lora_mini import BASE_TASKS, DOWNSTREAM_TASKS, complete, exact_match, make_batch, make_dataset
from lora_mini.tasks import SEP, SEQ_LEN, TASK_FNS, TASK_TOKEN, encode, eval_set


def test_known_answers():
    x = torch.tensor([[3, 1, 4, 1, 5, 9, 2, 6]])
    expected = {
        "copy": [3, 1, 4, 1, 5, 9, 2, 6],
        "reverse": [6, 2, 9, 5, 1, 4, 1, 3],
        "sort": [1, 1, 2, 3, 4, 5, 6, 9],
        "rotate": [1, 4, 1, 5, 9, 2, 6, 3],
        "swap_pairs": [1, 3, 1, 4, 9, 5, 6, 2],
        "increment": [4, 2, 5, 2, 6, 0, 3, 7],
        "sort_desc": [9, 6, 5, 4, 3, 2, 1, 1],
    }
    assert set(expected) == set(TASK_FNS)
    for task, y in expected.items():
        assert TASK_FNS[task](x).tolist() == [y]


def test_encoding_scores_only_the_answer():
    x = torch.tensor([[3, 1, 4, 1, 5, 9, 2, 6]])
    idx, targets = encode("reverse", x)
    assert idx.tolist() == [[TASK_TOKEN["reverse"], 3, 1, 4, 1, 5, 9, 2, 6, SEP, 6, 2, 9, 5, 1, 4, 1]]
    assert targets.tolist() == [[-100] * (SEQ_LEN + 1) + [6, 2, 9, 5, 1, 4, 1, 3]]


def test_batches_and_datasets_are_seeded():
    a = make_batch(BASE_TASKS, 32, torch.Generator().manual_seed(7))
    b = make_batch(BASE_TASKS, 32, torch.Generator().manual_seed(7))
    c = make_batch(BASE_TASKS, 32, torch.Generator().manual_seed(8))
    assert all(torch.equal(s, t) for s, t in zip(a, b))
    assert not torch.equal(a[0], c[0])
    assert set(a[0][:, 0].tolist()) == {TASK_TOKEN[t] for t in BASE_TASKS}
    d1, d2 = make_dataset("rotate", 100, seed=1), make_dataset("rotate", 100, seed=1)
    assert torch.equal(d1[0], d2[0]) and d1[0].shape == (100, 2 * SEQ_LEN + 1)


def test_eval_set_is_held_out_from_training_data():
    held = {tuple(r) for r in eval_set("rotate")[0].tolist()}
    train = {tuple(r) for r in make_dataset("rotate", 4096, seed=0)[0].tolist()}
    assert len(held) == 512 and not held & train


def test_exact_match_equals_greedy_decoding(base):
    idx, _ = eval_set("sort", 48)
    for row in idx:
        digits = row[1 : SEQ_LEN + 1].tolist()
        assert len(complete(base, "sort", digits)) == SEQ_LEN
    hits = [complete(base, "sort", r[1 : SEQ_LEN + 1].tolist()) == TASK_FNS["sort"](r[None, 1 : SEQ_LEN + 1])[0].tolist() for r in idx]
    assert exact_match(base, "sort", 48) == pytest.approx(sum(hits) / len(hits))


def test_complete_rejects_bad_input(base):
    with pytest.raises(ValueError, match="8 integers in 0..9"):
        complete(base, "copy", [1, 2, 3])
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        complete(base, "nope", [1] * 8)


def test_downstream_tasks_are_new_to_the_base(base):
    for task in DOWNSTREAM_TASKS:
        assert exact_match(base, task) < 0.2, task


def test_default_config_fits_the_tasks():
    from lora_mini import GPTConfig
    from lora_mini.tasks import BLOCK_SIZE, VOCAB_SIZE

    assert (GPTConfig().vocab_size, GPTConfig().block_size) == (VOCAB_SIZE, BLOCK_SIZE)
