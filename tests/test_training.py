"""Training: LoRA learns a task the base cannot do; runs are seeded; histories are complete."""
import pytest
import torch

from lora_mini import count_parameters, evaluate, inject_lora, load_base, make_dataset, train


def test_lora_learns_a_downstream_task_to_95_percent():
    model = load_base()
    inject_lora(model, ["q_proj", "v_proj"], r=4, alpha=8)
    assert evaluate(model, "rotate")["rotate"] < 0.2
    hist = train(model, "rotate", steps=150, lr=1e-2, progress=False, eval_tasks=["rotate"], eval_every=50)
    assert hist.eval_steps == [50, 100, 150]
    assert hist.accuracy["rotate"][-1] >= 0.95
    assert len(hist.loss) == 150 and hist.loss[-1] < hist.loss[0] / 10
    assert hist.seconds > 0


def test_runs_are_seeded():
    losses = []
    for _ in range(2):
        model = load_base()
        torch.manual_seed(0)
        inject_lora(model, ["q_proj"], r=2, alpha=2)
        losses.append(train(model, "increment", steps=4, seed=3, progress=False).loss)
    assert losses[0] == losses[1]


def test_full_fine_tuning_trains_everything_and_fixed_datasets_work():
    model = load_base()
    before = model.lm_head.weight.clone()
    assert count_parameters(model).trainable == count_parameters(model).total
    hist = train(model, make_dataset("rotate", 32, seed=0), steps=2, progress=False)
    assert len(hist.loss) == 2 and not torch.equal(model.lm_head.weight, before)


def test_nothing_to_train_is_an_error():
    model = load_base()
    model.requires_grad_(False)
    with pytest.raises(ValueError, match="nothing to train"):
        train(model, "rotate", steps=1, progress=False)


def test_step_seconds_times_a_copy():
    from lora_mini import make_batch, step_seconds

    model = load_base()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    t = step_seconds(model, make_batch("rotate", 8, torch.Generator().manual_seed(0)), repeats=3)
    assert 0 < t < 60  # a toy step takes milliseconds: only a hang breaks this (speed targets: lora_mini.bench)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_callback_sees_every_step():
    model = load_base()
    inject_lora(model, ["q_proj"], r=2, alpha=2)
    seen = []
    train(model, "rotate", steps=3, progress=False, callback=lambda step, m: seen.append((step, m is model)))
    assert seen == [(1, True), (2, True), (3, True)]


def test_param_groups_give_each_group_its_own_learning_rate():
    from lora_mini import loraplus_param_groups

    model = load_base().cpu()
    inject_lora(model, ["q_proj"], r=2, alpha=4)
    layer = model.blocks[0].attn.q_proj
    with torch.no_grad():
        layer.lora_B.normal_(std=0.1)  # B != 0, so A gets a gradient on the first step
    a0, b0 = layer.lora_A.clone(), layer.lora_B.clone()
    train(model, "rotate", steps=1, lr=1e-3, progress=False, param_groups=loraplus_param_groups(model, 1e-3, 8))
    model.cpu()
    # AdamW's first step moves each weight by about its group's lr (the update is g / |g|)
    torch.testing.assert_close((layer.lora_A - a0).abs().max().item(), 1e-3, atol=0, rtol=1e-2)
    torch.testing.assert_close((layer.lora_B - b0).abs().max().item(), 8e-3, atol=0, rtol=1e-2)


def test_param_groups_must_hold_exactly_the_trainable_parameters():
    model = load_base().cpu()
    inject_lora(model, ["q_proj"], r=2, alpha=4)
    layer = model.blocks[0].attn.q_proj
    before = layer.lora_A.clone()
    bad = {
        "missing B": [{"params": [layer.lora_A]}],
        "a frozen weight": [{"params": [layer.lora_A, layer.lora_B]}, {"params": [model.lm_head.weight]}],
        "twice": [{"params": [layer.lora_A, layer.lora_B]}, {"params": [layer.lora_B], "lr": 1.0}],
        "not a list of dicts": {"params": [layer.lora_A, layer.lora_B]},
    }
    for what, groups in bad.items():
        with pytest.raises(ValueError, match="param_groups must"):
            train(model, "rotate", steps=1, progress=False, param_groups=groups)
    assert torch.equal(layer.lora_A, before)  # nothing trained
