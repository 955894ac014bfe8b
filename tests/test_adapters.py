"""Adapters on disk: tiny safetensors files, atomic saves, exact round trips, hot swaps."""
import json
import os

import pytest
import torch
from safetensors import safe_open

from lora_mini import (
    AdapterFileError,
    count_parameters,
    disable_lora,
    evaluate,
    inject_lora,
    load_adapter,
    load_base,
    lora_state_dict,
    make_batch,
    reset_lora,
    save_adapter,
    train,
)

QV = ["q_proj", "v_proj"]


def _trained(task, steps=3):
    model = load_base().cpu()
    inject_lora(model, QV, r=4, alpha=8)
    train(model, task, steps=steps, lr=1e-2, progress=False)
    return model


def test_save_then_load_into_fresh_base_reproduces_outputs(tmp_path):
    model = _trained("rotate")
    path = save_adapter(model, tmp_path / "rotate.safetensors")
    fresh = load_base().cpu()
    inject_lora(fresh, QV, r=4, alpha=8)
    load_adapter(fresh, path)
    x = make_batch("rotate", 16, torch.Generator().manual_seed(3))[0]
    assert torch.equal(fresh(x)[0], model(x)[0])


def test_file_holds_only_lora_tensors_and_metadata(tmp_path):
    model = _trained("rotate", steps=1)
    path = save_adapter(model, tmp_path / "a.safetensors")
    with safe_open(path, framework="pt") as f:
        keys, meta = set(f.keys()), f.metadata()
    assert keys == set(lora_state_dict(model))
    assert meta["r"] == "4" and float(meta["alpha"]) == 8.0 and json.loads(meta["targets"]) == QV
    n_bytes = 4 * count_parameters(model).trainable
    assert n_bytes < os.path.getsize(path) < n_bytes + 4096  # the tensors plus a small header


def test_save_is_atomic(tmp_path, monkeypatch):
    """A writer that dies halfway (half a file on disk, then an error) leaves the old file whole."""
    import lora_mini.adapters as adapters

    model = _trained("rotate", steps=1)
    path = save_adapter(model, tmp_path / "a.safetensors")
    good = path.read_bytes()
    real_save = adapters.save_file

    def half_then_boom(tensors, filename, metadata=None):
        real_save(tensors, filename, metadata=metadata)
        data = open(filename, "rb").read()
        with open(filename, "wb") as f:
            f.write(data[: len(data) // 2])  # half a file where the writer was told to write
        raise OSError("disk full")

    train(model, "rotate", steps=1, lr=1e-2, progress=False)  # new values: an overwrite would show
    monkeypatch.setattr(adapters, "save_file", half_then_boom)
    with pytest.raises(AdapterFileError, match=f"cannot write {path}.*disk full"):
        save_adapter(model, path)
    assert path.read_bytes() == good  # the old file is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.safetensors"]  # no temporary left


def test_hot_swap_between_tasks_on_one_base(tmp_path):
    model = load_base().cpu()
    inject_lora(model, QV, r=4, alpha=8)
    frozen = {k: v.clone() for k, v in model.state_dict().items() if "lora_" not in k}
    paths = {}
    for task in ("rotate", "swap_pairs"):
        reset_lora(model)  # a fresh adapter for each task, same base
        assert all(torch.count_nonzero(v) == 0 for k, v in lora_state_dict(model).items() if k.endswith("lora_B"))
        train(model, task, steps=250, lr=1e-2, progress=False, seed=1)
        paths[task] = save_adapter(model, tmp_path / f"{task}.safetensors")
    for task in ("rotate", "swap_pairs", "rotate"):
        load_adapter(model, paths[task])
        acc = evaluate(model, ["rotate", "swap_pairs"])
        other = "swap_pairs" if task == "rotate" else "rotate"
        assert acc[task] >= 0.95 and acc[other] < 0.2, acc
    with disable_lora(model):
        assert max(evaluate(model, ["rotate", "swap_pairs"]).values()) < 0.2
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in frozen.items())
