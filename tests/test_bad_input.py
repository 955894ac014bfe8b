"""Bad input: a clear error that names the problem and the fix, and the model left exactly as it was."""
import pytest
import torch
import torch.nn as nn
from conftest import assert_same, snapshot
from safetensors.torch import save_file

from lora_mini import LoRALinear, LoraTypeError, LoraValueError, inject_lora, load_adapter, load_base, merge_lora, save_adapter

QV = ["q_proj", "v_proj"]


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(r=0), "r must be a positive integer"),
        (dict(r=-2), "r must be a positive integer"),
        (dict(r=2.5), "r must be a positive integer"),
        (dict(r=True), "r must be a positive integer"),
        (dict(r="4"), "r must be a positive integer"),
        (dict(alpha=0), "alpha must be a positive number"),
        (dict(alpha=-1.0), "alpha must be a positive number"),
        (dict(alpha=float("inf")), "alpha must be a positive number"),
        (dict(alpha=float("nan")), "alpha must be a positive number"),
        (dict(alpha="8"), "alpha must be a positive number"),
        (dict(dropout=1.0), "dropout must be in [0, 1)"),
        (dict(dropout=-0.1), "dropout must be in [0, 1)"),
        (dict(dropout=float("nan")), "dropout must be in [0, 1)"),
    ],
)
def test_bad_hyperparameters(base, kwargs, words):
    """A value of the right type that can't work is a LoraValueError; a wrong type (r=2.5, r="4") a LoraTypeError."""
    before = snapshot(base)
    args = dict(r=4, alpha=8, dropout=0.0) | kwargs
    value = next(iter(kwargs.values()))
    error = LoraTypeError if isinstance(value, (str, bool)) or (isinstance(value, float) and "r" in kwargs) else LoraValueError
    with pytest.raises(error, match=words.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")) as err:
        inject_lora(base, QV, **args)
    assert repr(value) in str(err.value)  # the message names the bad value
    assert_same(before, snapshot(base))
    with pytest.raises(error):
        LoRALinear(nn.Linear(3, 3), **args)


def test_target_that_matches_nothing_lists_the_linears(base):
    inject_lora(base, ["q_proj"], r=4, alpha=8)
    before = snapshot(base)
    with pytest.raises(ValueError, match="matches no module") as err:
        inject_lora(base, ["v_proj", "query"], r=4, alpha=8)  # v_proj is valid, query is not
    assert "blocks.0.attn.k_proj" in str(err.value) and "lm_head" in str(err.value)
    assert_same(before, snapshot(base))


def test_target_that_is_not_a_linear(base):
    before = snapshot(base)
    with pytest.raises(TypeError, match="CausalSelfAttention, not an nn.Linear"):
        inject_lora(base, ["q_proj", "attn"], r=4, alpha=8)
    with pytest.raises(TypeError, match="Embedding"):
        inject_lora(base, ["tok_emb"], r=4, alpha=8)
    with pytest.raises(TypeError, match="list of layer names"):
        inject_lora(base, [], r=4, alpha=8)
    assert_same(before, snapshot(base))


def test_reinjecting_with_another_rank_is_refused(base):
    inject_lora(base, QV, r=4, alpha=8)
    before = snapshot(base)
    with pytest.raises(ValueError, match="already has LoRA with r=4.*fresh base"):
        inject_lora(base, QV, r=8, alpha=8)
    assert_same(before, snapshot(base))


@pytest.fixture
def adapted():
    model = load_base().cpu()
    inject_lora(model, QV, r=4, alpha=8)
    return model


def _expect_load_error(model, path, words):
    before = snapshot(model)
    with pytest.raises(ValueError, match=words) as err:
        load_adapter(model, path)
    assert_same(before, snapshot(model))
    return str(err.value)


def test_file_from_other_targets_lists_the_mismatches(adapted, tmp_path):
    other = load_base().cpu()
    inject_lora(other, ["q_proj", "k_proj"], r=4, alpha=8)
    save_adapter(other, tmp_path / "qk.safetensors")
    msg = _expect_load_error(adapted, tmp_path / "qk.safetensors", "does not fit this model")
    assert "missing in file: blocks.0.attn.v_proj.lora_A" in msg
    assert "not in model: blocks.0.attn.k_proj.lora_A" in msg


def test_file_with_wrong_shapes_lists_them(adapted, tmp_path):
    tensors = {k: v.clone() for k, v in _state(adapted).items()}
    tensors["blocks.1.attn.q_proj.lora_A"] = torch.zeros(4, 7)
    save_file(tensors, tmp_path / "bad.safetensors", metadata={"format": "lora_mini", "r": "4", "alpha": "8.0", "targets": '["q_proj", "v_proj"]'})
    msg = _expect_load_error(adapted, tmp_path / "bad.safetensors", "does not fit")
    assert "shape of blocks.1.attn.q_proj.lora_A: file (4, 7), model (4, 96)" in msg


def _state(model):
    from lora_mini import lora_state_dict

    return lora_state_dict(model)


def test_file_of_another_rank(adapted, tmp_path):
    other = load_base().cpu()
    inject_lora(other, QV, r=8, alpha=8)
    save_adapter(other, tmp_path / "r8.safetensors")
    msg = _expect_load_error(adapted, tmp_path / "r8.safetensors", "r=8")
    assert "model has r=4" in msg and "inject_lora" in msg


def test_not_safetensors_and_never_unpickled(adapted, tmp_path):
    torch.save(_state(adapted), tmp_path / "adapter.pt")  # a pickle
    _expect_load_error(adapted, tmp_path / "adapter.pt", "not a readable safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"hello, world")
    _expect_load_error(adapted, tmp_path / "junk.safetensors", "not a readable safetensors")
    _expect_load_error(adapted, tmp_path / "missing.safetensors", "no adapter file")


def test_truncated_file(adapted, tmp_path):
    path = save_adapter(adapted, tmp_path / "a.safetensors")
    data = path.read_bytes()
    for cut in (len(data) - 10, len(data) // 2, 20, 5):
        (tmp_path / "t.safetensors").write_bytes(data[:cut])
        _expect_load_error(adapted, tmp_path / "t.safetensors", "not a readable safetensors")


def test_safetensors_without_lora_metadata(adapted, tmp_path):
    save_file(dict(_state(adapted)), tmp_path / "plain.safetensors")
    _expect_load_error(adapted, tmp_path / "plain.safetensors", "no lora_mini metadata")


def test_loading_into_a_model_without_lora(adapted, tmp_path):
    path = save_adapter(adapted, tmp_path / "a.safetensors")
    _expect_load_error(load_base().cpu(), path, "no LoRA layers; call inject_lora")


def test_merged_model_refuses_load_and_save(adapted, tmp_path):
    path = save_adapter(adapted, tmp_path / "a.safetensors")
    merge_lora(adapted)
    _expect_load_error(adapted, path, "unmerge_lora")
    with pytest.raises(ValueError, match="unmerge_lora"):
        save_adapter(adapted, tmp_path / "b.safetensors")
