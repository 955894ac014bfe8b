"""Bad input: a clear error that names the problem and the fix, and the model left exactly as it was."""
import os

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


# --- issue 18: one regression test per root cause -----------------------------------------------------------------
import json  # noqa: E402
import math  # noqa: E402

from lora_mini import (  # noqa: E402
    AdapterFileError,
    DoRALinear,
    LoraMiniError,
    LoraStateError,
    disable_lora,
    export_peft,
    import_peft,
    lora_state_dict,
    mixed_adapters,
    quantize_base,
    train,
    unmerge_lora,
)


def full_snapshot(model: nn.Module) -> dict:
    """Everything a refused call must leave as it was: module types, every state_dict tensor as bytes (so a NaN
    equals itself), dtypes and shapes, requires_grad, merged/disabled flags and train/eval mode of every module."""
    return {
        "modules": [(n, type(m).__name__, m.training, getattr(m, "merged", None), getattr(m, "disabled", None))
                    for n, m in model.named_modules()],
        "state": {k: (v.dtype, tuple(v.shape), v.detach().reshape(-1).contiguous().view(torch.uint8).clone())
                  for k, v in model.state_dict().items()},
        "grad": {n: p.requires_grad for n, p in model.named_parameters()},
    }


def assert_full_same(before: dict, after: dict) -> None:
    assert before["modules"] == after["modules"]
    assert before["grad"] == after["grad"]
    assert before["state"].keys() == after["state"].keys()
    for k, (dtype, shape, data) in before["state"].items():
        assert (dtype, shape) == after["state"][k][:2] and torch.equal(data, after["state"][k][2]), k


def _refused(model, error, call, *args, match=None, **kwargs):
    """``call(*args, **kwargs)`` raises ``error`` (matching ``match``) and leaves ``model`` bit-identical."""
    before = full_snapshot(model)
    with pytest.raises(error, match=match) as err:
        call(*args, **kwargs)
    assert_full_same(before, full_snapshot(model))
    return str(err.value)


# 1. mutation before validation: plan and allocate everything, then commit
def test_1_huge_rank_leaves_the_base_unfrozen(base):
    msg = _refused(base, LoraValueError, inject_lora, base, ["q_proj"], r=10**12, alpha=8)
    assert "r=1000000000000" in msg and "smaller r" in msg
    assert all(p.requires_grad for p in base.parameters())  # nothing was frozen


def test_1_pissa_on_a_nan_layer_wraps_nothing(base):
    with torch.no_grad():
        base.blocks[1].attn.q_proj.weight[0, 0] = float("nan")  # the second layer: the first would succeed
    msg = _refused(base, LoraValueError, inject_lora, base, ["q_proj"], r=4, alpha=8, init_lora_weights="pissa")
    assert "blocks.1.attn.q_proj" in msg and "NaN" in msg


def test_1_any_failure_while_building_restores_requires_grad(base, monkeypatch):
    import lora_mini.variants as variants

    calls = []

    def failing_svd(*args):  # the SVD of the second layer fails, after the first layer was built
        calls.append(1)
        if len(calls) == 2:
            raise torch.linalg.LinAlgError("did not converge")
        return original(*args)

    original = variants.pissa_factors
    monkeypatch.setattr(variants, "pissa_factors", failing_svd)
    _refused(base, LoraValueError, inject_lora, base, QV, r=4, alpha=8, init_lora_weights="pissa",
             match="could not build")


# 2. train() validates every argument before the first step
@pytest.mark.parametrize("kwargs, error, words", [
    (dict(eval_tasks=["rotat"]), LoraValueError, "eval_tasks holds unknown task"),
    (dict(callback=5), LoraTypeError, "callback must be a function"),
    (dict(stop_at="0.9"), LoraTypeError, "stop_at must be"),
    (dict(stop_at=1.5), LoraValueError, "stop_at must be"),
    (dict(eval_every=-1), LoraValueError, "eval_every must be"),
    (dict(weight_decay=-0.1), LoraValueError, "weight_decay must be"),
    (dict(progress="no"), LoraTypeError, "progress must be True or False"),
])
def test_2_train_checks_everything_before_the_first_step(adapted, kwargs, error, words):
    _refused(adapted, error, train, adapted, "rotate", **(dict(steps=2, progress=False) | kwargs), match=words)


# 3. infinity and nan never pass a float check
def test_3_infinite_floats_are_refused(adapted, tmp_path):
    fresh = load_base().cpu()
    for value in (math.inf, -math.inf, math.nan):
        _refused(fresh, LoraValueError, inject_lora, fresh, QV, r=4, alpha=value, match="alpha must be")
        _refused(adapted, LoraValueError, train, adapted, "rotate", steps=1, lr=value, progress=False, match="lr must")
    export_peft(adapted, tmp_path / "peft")
    config = json.loads((tmp_path / "peft" / "adapter_config.json").read_text())
    (tmp_path / "peft" / "adapter_config.json").write_text(json.dumps(config | {"lora_alpha": math.inf}))
    assert "Infinity" in (tmp_path / "peft" / "adapter_config.json").read_text()
    _refused(fresh, AdapterFileError, import_peft, fresh, tmp_path / "peft", match="alpha must be")


# 4. loaded tensors are checked: floating, finite, cast only where exact
def _adapter_with(model, path, key, tensor):
    tensors = {k: v.clone() for k, v in lora_state_dict(model).items()} | {key: tensor}
    meta = {"format": "lora_mini", "r": "4", "alpha": "8.0", "use_rslora": "false", "targets": '["q_proj", "v_proj"]'}
    save_file(tensors, path, metadata=meta)
    return path


@pytest.mark.parametrize("make, words", [
    (lambda t: t.clone().fill_(float("nan")), "NaN or infinite"),
    (lambda t: t.clone().fill_(float("inf")), "NaN or infinite"),
    (lambda t: t.to(torch.int64), "dtype torch.int64"),
    (lambda t: t.to(torch.bool), "dtype torch.bool"),
    (lambda t: t.double().fill_(1e300), "does not convert exactly"),
    (lambda t: t.double() + 1e-12, "does not convert exactly"),
])
def test_4_bad_tensors_in_adapter_files(adapted, tmp_path, make, words):
    key = "blocks.0.attn.q_proj.lora_A"
    path = _adapter_with(adapted, tmp_path / "bad.safetensors", key, make(lora_state_dict(adapted)[key]))
    _refused(adapted, AdapterFileError, load_adapter, adapted, path, match=words)


def test_4_exact_casts_are_accepted(adapted, tmp_path):
    key = "blocks.0.attn.q_proj.lora_A"
    half = torch.full((4, 96), 0.5)
    load_adapter(adapted, _adapter_with(adapted, tmp_path / "f64.safetensors", key, half.double()))
    assert torch.equal(lora_state_dict(adapted)[key], half) and lora_state_dict(adapted)[key].dtype == torch.float32


def test_4_bad_tensors_in_peft_folders(adapted, tmp_path):
    export_peft(adapted, tmp_path / "peft")
    weights = tmp_path / "peft" / "adapter_model.safetensors"
    from safetensors.torch import load_file

    tensors = load_file(weights)
    key = next(k for k in tensors if k.endswith("lora_B.weight"))
    for bad, words in ((tensors[key].clone().fill_(float("nan")), "NaN"), (tensors[key].to(torch.int32), "int32"),
                       (tensors[key].double().fill_(1e300), "exactly")):
        save_file(tensors | {key: bad}, weights)
        fresh = load_base().cpu()
        _refused(fresh, AdapterFileError, import_peft, fresh, tmp_path / "peft", match=words)


# 5. adapter metadata: every field parsed inside the error handling
@pytest.mark.parametrize("meta, words", [
    ({"alpha": None}, "'alpha' is missing"),
    ({"r": None}, "'r' is missing"),
    ({"r": "abc"}, "'r' is 'abc'"),
    ({"r": "-4"}, "'r' is '-4'"),
    ({"alpha": "inf"}, "'alpha' is 'inf'"),
    ({"alpha": "eight"}, "'alpha' is 'eight'"),
    ({"use_rslora": "maybe"}, "'use_rslora' is 'maybe'"),
    ({"targets": "q_proj"}, "'targets'"),
    ({"r": "8", "targets": None}, "r=8"),  # an r mismatch without targets: a clear mismatch, not a KeyError
])
def test_5_bad_metadata(adapted, tmp_path, meta, words):
    full = {"format": "lora_mini", "r": "4", "alpha": "8.0", "use_rslora": "false", "targets": '["q_proj", "v_proj"]'}
    full = {k: v for k, v in (full | meta).items() if v is not None}
    save_file(dict(lora_state_dict(adapted)), tmp_path / "m.safetensors", metadata=full)
    _refused(adapted, AdapterFileError, load_adapter, adapted, tmp_path / "m.safetensors", match=words)


@pytest.mark.parametrize("header", [b"[]", b"[" * 100_000 + b"]" * 100_000, b'{"__metadata__": []}', b"7"])
def test_5_headers_that_are_json_but_not_an_adapter(adapted, tmp_path, header):
    path = tmp_path / "h.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header)
    _refused(adapted, AdapterFileError, load_adapter, adapted, path, match="not a readable safetensors")


def test_5_deeply_nested_peft_config(adapted, tmp_path):
    export_peft(adapted, tmp_path / "peft")
    (tmp_path / "peft" / "adapter_config.json").write_text("[" * 100_000 + "]" * 100_000)
    fresh = load_base().cpu()
    _refused(fresh, AdapterFileError, import_peft, fresh, tmp_path / "peft", match="not valid JSON")
    (tmp_path / "peft" / "adapter_config.json").write_text('{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "use_dora": "maybe"}')
    _refused(fresh, AdapterFileError, import_peft, fresh, tmp_path / "peft", match="use_dora is 'maybe'")


# 6. context managers compose: nested disable_lora, nothing silently ignored inside mixed_adapters
def test_6_nested_disable_lora(adapted):
    with torch.no_grad():
        for layer in (m for m in adapted.modules() if isinstance(m, LoRALinear)):
            layer.lora_B.normal_()
    idx = torch.randint(0, 10, (2, 17))
    adapted_out, base_out = adapted(idx)[0], load_base().cpu()(idx)[0]
    with disable_lora(adapted):
        with disable_lora(adapted):
            pass
        assert torch.equal(adapted(idx)[0], base_out)  # still disabled after the inner block
    assert torch.equal(adapted(idx)[0], adapted_out)


def test_6_nothing_silently_ignored_inside_mixed_adapters(adapted, tmp_path):
    path = save_adapter(adapted, tmp_path / "a.safetensors")
    with mixed_adapters(adapted, [path], torch.tensor([0])):
        for call in (disable_lora, merge_lora, unmerge_lora):
            msg = _refused(adapted, LoraStateError, lambda: call(adapted).__enter__() if call is disable_lora else call(adapted))
            assert "mixed_adapters" in msg and "leave" in msg
        _refused(adapted, LoraStateError, train, adapted, "rotate", steps=1, progress=False)
        _refused(adapted, LoraStateError, save_adapter, adapted, tmp_path / "b.safetensors")
        _refused(adapted, LoraStateError, mixed_adapters(adapted, [path], torch.tensor([0])).__enter__)
    with disable_lora(adapted):
        _refused(adapted, LoraStateError, merge_lora, adapted, match="disable_lora")
        _refused(adapted, LoraStateError, inject_lora, adapted, ["k_proj"], r=4, alpha=8, match="disable_lora")


# 7. DoRA never divides by zero
def test_7_dora_zero_magnitude_merges_and_unmerges_exactly(base, tmp_path):
    inject_lora(base, QV, r=4, alpha=8, use_dora=True)
    with torch.no_grad():
        for layer in (m for m in base.modules() if isinstance(m, DoRALinear)):
            layer.lora_B.normal_()
            layer.lora_magnitude_vector[:3] = 0.0
    export_peft(base, tmp_path / "dora")
    model = load_base().cpu()
    import_peft(model, tmp_path / "dora")  # accepted: m = 0 is a legal (if odd) magnitude
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    merge_lora(model)
    assert all(torch.isfinite(v).all() for v in model.state_dict().values())
    unmerge_lora(model)
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())  # back exactly


def test_7_dora_zero_weight_row_is_finite_at_step_0(base):
    with torch.no_grad():
        base.blocks[0].attn.q_proj.weight[5] = 0.0
    inject_lora(base, QV, r=4, alpha=8, use_dora=True)
    idx = torch.randint(0, 10, (2, 17))
    assert torch.isfinite(base(idx)[0]).all()
    hist = train(base, "rotate", steps=2, lr=1e-2, batch_size=8, progress=False)
    assert all(math.isfinite(x) for x in hist.loss)


# 8. export_peft is all-or-nothing
def test_8_export_peft_crash_never_leaves_new_weights_beside_an_old_config(adapted, tmp_path, monkeypatch):
    import lora_mini.peft_bridge as bridge

    folder = export_peft(adapted, tmp_path / "peft")
    old = {p.name: p.read_bytes() for p in folder.iterdir()}
    other = load_base().cpu()
    inject_lora(other, QV, r=2, alpha=4)
    real_replace, calls = os.replace, []

    def crash_on_config(src, dst):  # the weights are renamed into place, then the machine "dies"
        calls.append(dst)
        if str(dst).endswith("adapter_config.json"):
            raise OSError("power cut")
        real_replace(src, dst)

    monkeypatch.setattr(bridge.os, "replace", crash_on_config)
    with pytest.raises(AdapterFileError, match="power cut"):
        export_peft(other, folder)
    monkeypatch.undo()
    assert sorted(p.name for p in folder.iterdir()) == ["adapter_model.safetensors"]  # no stale config, no temps
    fresh = load_base().cpu()
    _refused(fresh, AdapterFileError, import_peft, fresh, folder, match="no adapter_config.json")

    folder2 = export_peft(adapted, tmp_path / "peft2")
    monkeypatch.setattr(bridge, "save_file", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(AdapterFileError, match="disk full"):
        export_peft(other, folder2)
    assert {p.name: p.read_bytes() for p in folder2.iterdir()} == old  # a failure while writing: the old pair, intact
    with pytest.raises(AdapterFileError):
        export_peft(other, tmp_path / "new")
    assert not (tmp_path / "new").exists()  # no empty folder left behind


# 9. training a merged model or inside disable_lora: "unmerge first", not an autograd error
def test_9_train_merged_or_disabled(adapted):
    merge_lora(adapted)
    _refused(adapted, LoraStateError, train, adapted, "rotate", steps=1, progress=False, match="unmerge_lora")
    unmerge_lora(adapted)
    with disable_lora(adapted):
        _refused(adapted, LoraStateError, train, adapted, "rotate", steps=1, progress=False, match="disable_lora")


# 10. train()'s basic checks
@pytest.mark.parametrize("kwargs, error, words", [
    (dict(steps=-5), LoraValueError, "steps must be a positive integer"),
    (dict(steps=0), LoraValueError, "steps must be a positive integer"),
    (dict(steps=2.5), LoraTypeError, "steps must be a positive integer"),
    (dict(steps="2"), LoraTypeError, "steps must be a positive integer"),
    (dict(batch_size=0), LoraValueError, "batch_size must be"),
    (dict(batch_size=-1), LoraValueError, "batch_size must be"),
    (dict(data=[]), LoraValueError, "data is empty"),
    (dict(data="rotat"), LoraValueError, "unknown task"),
    (dict(data=5), LoraTypeError, "data must be a task name"),
    (dict(data=(torch.zeros(0, 17, dtype=torch.long), torch.zeros(0, 17, dtype=torch.long))), LoraValueError, "empty"),
    (dict(data=(torch.full((4, 17), 99), torch.zeros(4, 17, dtype=torch.long))), LoraValueError, "vocabulary is 0..17"),
    (dict(data=(torch.zeros(4, 17, dtype=torch.long), torch.full((4, 17), -3))), LoraValueError, "targets hold ids"),
    (dict(data=(torch.zeros(4, 17), torch.zeros(4, 17))), LoraTypeError, "integer token ids"),
    (dict(data=(torch.zeros(4, 30, dtype=torch.long),) * 2), LoraValueError, "at most 17"),
])
def test_10_train_basic_checks(adapted, kwargs, error, words):
    args = dict(data="rotate", steps=2, progress=False) | kwargs
    data = args.pop("data")
    _refused(adapted, error, train, adapted, data, **args, match=words)


# 11. inject_lora(model, None) and inject_lora(None, ...)
def test_11_none_arguments(base):
    _refused(base, LoraTypeError, inject_lora, base, None, r=4, alpha=8, match="targets must be a list")
    _refused(base, LoraTypeError, inject_lora, base, [None], r=4, alpha=8, match="targets must be a list")
    with pytest.raises(LoraTypeError, match="torch.nn.Module"):
        inject_lora(None, QV, r=4, alpha=8)
    calls = [lambda: merge_lora(None), lambda: unmerge_lora(None), lambda: save_adapter(None, "a.safetensors"),
             lambda: load_adapter(None, "a.safetensors"), lambda: train(None, "rotate", steps=1),
             lambda: export_peft(None, "peft"), lambda: import_peft(None, "peft"), lambda: quantize_base(None),
             lambda: disable_lora(None).__enter__()]
    for call in calls:
        with pytest.raises(LoraTypeError, match="torch.nn.Module"):
            call()


# 12. save_adapter's paths
def test_12_long_empty_and_missing_paths(adapted, tmp_path):
    long = tmp_path / ("a" * 240 + ".safetensors")  # 252 characters, legal on every common file system
    assert len(long.name) == 252
    load_adapter(adapted, save_adapter(adapted, long))
    assert sorted(p.name for p in tmp_path.iterdir()) == [long.name]  # no temporary left
    _refused(adapted, LoraValueError, save_adapter, adapted, "", match="path is empty")
    missing = tmp_path / "no" / "such" / "a.safetensors"
    msg = _refused(adapted, AdapterFileError, save_adapter, adapted, missing, match="does not exist")
    assert str(missing) in msg and ".tmp" not in msg
    _refused(adapted, AdapterFileError, save_adapter, adapted, tmp_path, match="is a folder")


# 13. quantize_base's block size
def test_13_quantize_block_size_is_bounded(base):
    for bad in (2**40, 4098):
        _refused(base, LoraValueError, quantize_base, base, block_size=bad, match="block_size must be an integer in")
    _refused(base, LoraValueError, quantize_base, base, block_size=6 + 1, match="even")
    _refused(base, LoraValueError, quantize_base, base, kind=["nf4"], match="kind must be one of")


# 15. load_base on a file that is not a base
def test_15_load_base_on_an_adapter_file(adapted, tmp_path):
    with pytest.raises(AdapterFileError, match="not a base checkpoint.*load_adapter"):
        load_base(save_adapter(adapted, tmp_path / "a.safetensors"))
    with pytest.raises(AdapterFileError, match="not a readable safetensors"):
        load_base(tmp_path / "missing.safetensors")


# 16. quiz numbers: one rule for thousands separators
def test_16_quiz_numbers_group_thousands_by_three():
    from lora_mini.quiz import parse_number

    for text in ("3072", "3,072", "3 072", "3\u00a0072", "3\u202f072", "3_072", "3072.0", "3,072%", "6144/2"):
        assert parse_number(text) == 3072, text  # any kind of space, or a comma, between groups of three
    for text in ("3,07,2", "30,72", "3 0 7 2", "1,5", "3,072 000", "3, 072", "1/0", "inf", "nan", "", "three"):
        assert parse_number(text) is None, text


def test_every_error_is_a_lora_mini_error_and_its_builtin():
    for error, builtin in ((LoraValueError, ValueError), (LoraTypeError, TypeError),
                           (AdapterFileError, ValueError), (LoraStateError, RuntimeError)):
        assert issubclass(error, LoraMiniError) and issubclass(error, builtin)
    assert issubclass(LoraStateError, ValueError)  # as before it had its own class


def test_inject_lora_refreezes_what_the_learner_unfroze_and_unfreezing_after_works(base):
    """Decision (issue 18): inject_lora leaves only LoRA trainable, as PEFT's get_peft_model does; a parameter the
    learner unfroze before (lm_head) is frozen again, and unfreezing it after inject_lora trains it alongside."""
    base.lm_head.weight.requires_grad_(True)
    inject_lora(base, QV, r=4, alpha=8)
    assert not base.lm_head.weight.requires_grad
    base.lm_head.weight.requires_grad_(True)
    head = base.lm_head.weight.detach().clone()
    train(base, "rotate", steps=1, lr=1e-2, batch_size=8, progress=False)
    assert not torch.equal(base.lm_head.weight, head)
    assert base.blocks[0].attn.q_proj.base.weight.requires_grad is False


def test_found_by_the_fuzzer_inject_inside_disable_on_a_fresh_base(base):
    """disable_lora on a model without LoRA still marks it: LoRA injected inside the block would run un-disabled."""
    with disable_lora(base):
        _refused(base, LoraStateError, inject_lora, base, QV, r=4, alpha=8, match="disable_lora")
        _refused(base, LoraStateError, train, base, "rotate", steps=1, progress=False, match="disable_lora")
    inject_lora(base, QV, r=4, alpha=8)  # after the block: fine


def test_found_by_the_fuzzer_evaluate_inside_mixed_adapters_keeps_the_mode(adapted, tmp_path):
    from lora_mini import evaluate

    path = save_adapter(adapted, tmp_path / "a.safetensors")
    with mixed_adapters(adapted, [path], torch.tensor([0, 0])):
        _refused(adapted, LoraStateError, evaluate, adapted, "rotate", match="mixed_adapters")


def test_load_questions_names_a_bad_quiz_file(tmp_path):
    """Issue 18, cause 15: a quiz file that is not JSON (or not a list) is refused with its path named."""
    from lora_mini.errors import LoraValueError
    from lora_mini.quiz import load_questions

    broken = tmp_path / "broken.json"
    broken.write_text('[{"question": "x",', encoding="utf-8")
    with pytest.raises(LoraValueError, match="broken.json is not valid JSON"):
        load_questions(broken)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    with pytest.raises(LoraValueError, match="deep.json is not valid JSON"):
        load_questions(deep)
    not_a_list = tmp_path / "object.json"
    not_a_list.write_text('{"question": "x"}', encoding="utf-8")
    with pytest.raises(LoraValueError, match="object.json: a quiz file holds a JSON list"):
        load_questions(not_a_list)
