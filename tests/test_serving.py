"""mixed_adapters: one forward pass, a different adapter per row, the model restored afterwards."""
from pathlib import Path

import pytest
import torch

from lora_mini import LoraTypeError, LoraValueError, inject_lora, load_adapter, load_base, lora_state_dict, merge_lora, save_adapter
from lora_mini.lora import LoRALinear, disable_lora
from lora_mini.serving import MixedLoRALinear, mixed_adapters
from lora_mini.tasks import make_batch


def _model(targets=("q_proj", "v_proj"), r=4, alpha=8):
    model = load_base().cpu()
    inject_lora(model, list(targets), r=r, alpha=alpha)
    return model


def _randomise(model, seed):
    """Give every adapter a random, non-zero B (as if trained), so adapters differ clearly."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for v in lora_state_dict(model).values():
            v.copy_(0.3 * torch.randn(v.shape, generator=g))


@pytest.fixture(scope="module")
def adapter_files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("adapters")
    model = _model()
    paths = []
    for k in range(3):
        _randomise(model, seed=k)
        paths.append(save_adapter(model, tmp / f"a{k}.safetensors"))
    return paths


@pytest.fixture
def model():
    m = _model()
    _randomise(m, seed=99)  # the model's own adapter, which must survive every context
    return m


def _snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}, [
        (n, id(m), type(m)) for n, m in model.named_modules()
    ]


def _assert_unchanged(model, snap):
    state, modules = snap
    now = model.state_dict()
    assert now.keys() == state.keys()
    assert all(torch.equal(now[k], v) for k, v in state.items())
    assert [(n, id(m), type(m)) for n, m in model.named_modules()] == modules
    assert not any(isinstance(m, MixedLoRALinear) for m in model.modules())


def _batch(n=9):
    idx, _ = make_batch(["rotate", "increment", "swap_pairs"], n, torch.Generator().manual_seed(1))
    return idx


def test_mixed_batch_equals_each_row_alone(model, adapter_files):
    idx = _batch(9)
    which = torch.tensor([0, 1, 2, 2, 1, 0, 0, 2, 1])
    with torch.no_grad(), mixed_adapters(model, adapter_files, which):
        mixed, _ = model(idx)  # (9, T, vocab)
    alone = _model()
    for i in range(len(idx)):
        load_adapter(alone, adapter_files[int(which[i])])
        with torch.no_grad():
            ref, _ = alone(idx[i : i + 1])
        torch.testing.assert_close(mixed[i : i + 1], ref, atol=1e-5, rtol=0)


def test_rows_really_use_different_adapters(model, adapter_files):
    idx = _batch(4)[:1].repeat(3, 1)  # the same input three times
    with torch.no_grad(), mixed_adapters(model, adapter_files, torch.tensor([0, 1, 2])):
        out, _ = model(idx)
    assert not torch.allclose(out[0], out[1]) and not torch.allclose(out[1], out[2])


def test_one_adapter_for_all_rows_equals_load_adapter(model, adapter_files):
    idx = _batch(5)
    with torch.no_grad(), mixed_adapters(model, adapter_files, torch.full((5,), 1)):
        mixed, _ = model(idx)
    ref_model = _model()
    load_adapter(ref_model, adapter_files[1])
    with torch.no_grad():
        ref, _ = ref_model(idx)
    torch.testing.assert_close(mixed, ref, atol=1e-5, rtol=0)


def test_model_restored_exactly_after_the_context(model, adapter_files):
    snap = _snapshot(model)
    with torch.no_grad():
        before, _ = model(_batch(3))
        with mixed_adapters(model, adapter_files, torch.tensor([2, 0, 1])):
            assert sum(isinstance(m, MixedLoRALinear) for m in model.modules()) == 4
            model(_batch(3))
        after, _ = model(_batch(3))
    _assert_unchanged(model, snap)
    assert torch.equal(before, after)
    assert sum(isinstance(m, LoRALinear) for m in model.modules()) == 4


def test_model_restored_after_an_exception_inside(model, adapter_files):
    snap = _snapshot(model)
    with pytest.raises(RuntimeError, match="boom"):
        with mixed_adapters(model, adapter_files, torch.tensor([0, 1])):
            raise RuntimeError("boom")
    _assert_unchanged(model, snap)


def test_wrong_batch_size_raises_inside_and_restores(model, adapter_files):
    snap = _snapshot(model)
    with pytest.raises(ValueError, match="batch has 5 rows but `which` names an adapter for 3"):
        with torch.no_grad(), mixed_adapters(model, adapter_files, torch.tensor([0, 1, 2])):
            model(_batch(5))
    _assert_unchanged(model, snap)


@pytest.mark.parametrize(
    "which, message",
    [
        (torch.tensor([0, 3]), r"indices 0\.\.3 but there are 3 adapters"),
        (torch.tensor([-1, 0]), r"indices -1\.\.0"),
        (torch.tensor([0.0, 1.0]), "integer adapter indices"),
        (torch.tensor([[0, 1]]), "1-D"),
        (torch.tensor([], dtype=torch.long), "1-D"),
        ("zero", "LongTensor"),
    ],
)
def test_bad_which_raises_and_changes_nothing(model, adapter_files, which, message):
    snap = _snapshot(model)
    error = LoraTypeError if message in ("integer adapter indices", "LongTensor") else LoraValueError
    with pytest.raises(error, match=message):
        with mixed_adapters(model, adapter_files, which):
            pass
    _assert_unchanged(model, snap)


def test_list_of_ints_is_accepted(model, adapter_files):
    with torch.no_grad(), mixed_adapters(model, adapter_files, [0, 2]):
        out, _ = model(_batch(2))
    assert out.shape[0] == 2


def test_incompatible_file_raises_and_changes_nothing(model, adapter_files, tmp_path):
    other = _model(targets=("q_proj", "v_proj"), r=8, alpha=16)
    bad = save_adapter(other, tmp_path / "r8.safetensors")
    fc = _model(targets=("fc1",))
    bad_targets = save_adapter(fc, tmp_path / "fc1.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    snap = _snapshot(model)
    for path, message in [
        (bad, "r=8"),
        (bad_targets, "does not fit this model"),
        (junk, "not a readable safetensors"),
        (tmp_path / "missing.safetensors", "no adapter file"),
    ]:
        with pytest.raises(ValueError, match=message):
            with mixed_adapters(model, [*adapter_files, path], torch.tensor([0, 3])):
                pass
        _assert_unchanged(model, snap)


def test_bad_adapters_argument(model, adapter_files):
    for bad, error in (([], LoraValueError), (adapter_files[0], LoraTypeError), (str(adapter_files[0]), LoraTypeError)):
        with pytest.raises(error, match="non-empty list of adapter file paths"):
            with mixed_adapters(model, bad, torch.tensor([0])):
                pass


def test_merged_or_disabled_or_plain_model_raises(model, adapter_files):
    snap = _snapshot(model)
    with disable_lora(model):
        with pytest.raises(ValueError, match="disable_lora"):
            with mixed_adapters(model, adapter_files, torch.tensor([0])):
                pass
    _assert_unchanged(model, snap)
    merge_lora(model)
    merged = _snapshot(model)
    with pytest.raises(ValueError, match="unmerge_lora"):
        with mixed_adapters(model, adapter_files, torch.tensor([0])):
            pass
    _assert_unchanged(model, merged)
    with pytest.raises(ValueError, match="no LoRA layers"):
        with mixed_adapters(load_base().cpu(), adapter_files, torch.tensor([0])):
            pass


def test_adapter_paths_may_be_strings(model, adapter_files):
    with torch.no_grad(), mixed_adapters(model, [str(p) for p in adapter_files], torch.tensor([1])):
        out, _ = model(_batch(1))
    assert out.shape[0] == 1 and isinstance(adapter_files[0], Path)


def test_mixed_layer_on_2d_input_matches_lora_linear_row_by_row():
    torch.manual_seed(0)
    layers = [LoRALinear(torch.nn.Linear(6, 5), r=2, alpha=4) for _ in range(3)]
    base = layers[0].base
    for layer in layers:
        layer.base = base  # one shared frozen Linear, three adapters
        torch.nn.init.normal_(layer.lora_B)
    A = torch.stack([layer.lora_A.detach() for layer in layers])  # (3, 2, 6)
    B = torch.stack([layer.lora_B.detach() for layer in layers])  # (3, 5, 2)
    which = torch.tensor([2, 0, 1, 2])
    mixed = MixedLoRALinear(layers[0], A, B, which)
    x = torch.randn(4, 6)  # (batch, in): no time axis
    with torch.no_grad():
        out = mixed(x)  # (4, 5)
        ref = torch.cat([layers[int(k)](x[i : i + 1]) for i, k in enumerate(which)])
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=0)
    assert "adapters=3" in repr(mixed)
