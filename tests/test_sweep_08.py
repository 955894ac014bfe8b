"""The cache notebook 08 reads (lora_mini/data/sweep_08.json) matches what scripts/sweep_08.py computes now."""
import importlib.util
import json
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "lora_mini" / "data" / "sweep_08.json"


def _script():
    spec = importlib.util.spec_from_file_location("sweep_08", ROOT / "scripts" / "sweep_08.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # as the script runs: bit-for-bit reproducible
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def cache():
    return json.loads(CACHE.read_text())


def _close(a, b, tol=1e-6):
    """Equal structures, floats within ``tol`` (exact match is a multiple of 1/512: any change is larger)."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k], tol) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_close(x, y, tol) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return abs(a - b) <= tol
    return a == b


def test_small_forgetting_matches_cache(one_thread, cache):
    sweep = _script()
    assert _close(sweep.forgetting_sweep(sweep.SMALL_FORGET), cache["small"]["forgetting"])


def test_small_scarce_matches_cache(one_thread, cache):
    sweep = _script()
    assert _close(sweep.scarce_sweep(sweep.SMALL_SCARCE), cache["small"]["scarce"])


def test_cache_has_the_configured_sweep(cache):
    sweep = _script()
    f, s = cache["forgetting"], cache["scarce"]
    assert [(r["method"], r["lr"]) for r in f["runs"]] == [(m, lr) for m, lrs in sweep.FORGET["lrs"].items() for lr in lrs]
    assert all(r["eval_steps"][-1] == sweep.FORGET["steps"] for r in f["runs"])
    want = {(t, n, seed, m) for t in sweep.SCARCE["tasks"] for n in sweep.SCARCE["sizes"]
            for seed in sweep.SCARCE["seeds"] for m in sweep.SCARCE["lr"]}
    assert {(r["task"], r["n"], r["seed"], r["method"]) for r in s["runs"]} == want
    assert all(0 <= r["train"] <= 1 and 0 <= r["held_out"] <= 1 for r in s["runs"])


def test_adapter_off_is_the_base(cache):
    f = cache["forgetting"]
    for run in f["runs"]:
        if run["method"] == "lora":
            assert run["adapter_off"] == f["base"]


def test_one_cached_full_run_reproduces(one_thread, cache):
    """One real-size scarce-data run (a few seconds) against its cached numbers."""
    sweep = _script()
    s = cache["scarce"]
    cached = next(r for r in s["runs"] if (r["task"], r["n"], r["seed"], r["method"]) == ("rotate", 64, 0, "lora"))
    assert _close(sweep.scarce_run("lora", "rotate", 64, 0, s["steps"], s["lr"]["lora"]), cached)
