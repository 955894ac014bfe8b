"""The cache notebook 09 reads (lora_mini/data/sweep_09.json) matches what scripts/sweep_09.py computes now."""
import importlib.util
import json
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "lora_mini" / "data" / "sweep_09.json"


def _script():
    spec = importlib.util.spec_from_file_location("sweep_09", ROOT / "scripts" / "sweep_09.py")
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
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_close(x, y, tol) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return abs(a - b) <= tol
    return a == b


def test_small_sweep_matches_cache(one_thread, cache):
    sweep = _script()
    assert _close(sweep.sweep(sweep.SMALL, sweep.SMALL_CONFIGS), cache["small"])


def test_cache_has_the_configured_sweep(cache):
    sweep = _script()
    assert [tuple(c) for c in cache["configs"]] == sweep.CONFIGS
    assert {k: cache[k] for k in sweep.SWEEP} == sweep.SWEEP
    assert [(r["task"], r["method"], r["size"], r["lr"]) for r in cache["runs"]] == [
        (t, m, s, lr) for t in sweep.SWEEP["tasks"] for m, s in sweep.CONFIGS for lr in sweep.SWEEP["lrs"]]
    steps = list(range(sweep.SWEEP["eval_every"], sweep.SWEEP["steps"] + 1, sweep.SWEEP["eval_every"]))
    assert all(r["eval_steps"] == steps for r in cache["runs"])
    assert all(0 <= a <= 1 for r in cache["runs"] for a in [*r["accuracy"], r["digits"]])
    assert all(cache["base"][t]["exact_match"] == 0.0 for t in sweep.SWEEP["tasks"])  # task tokens new to the base


def test_cached_counts_are_the_models_counts(cache):
    sweep = _script()
    for method, size in sweep.CONFIGS:
        _, n = sweep.fresh_model(method, size)
        assert {r["trainable"] for r in cache["runs"] if (r["method"], r["size"]) == (method, size)} == {n}


def test_digit_accuracy_agrees_with_exact_match():
    """All digits right on every example <=> exact match 1; the base copies, so some rotate digits are right."""
    from lora_mini import load_base
    from lora_mini.tasks import exact_match

    sweep = _script()
    base = load_base().cpu()
    digits = sweep.digit_accuracy(base, "copy")
    assert (digits == 1.0) == (exact_match(base, "copy") == 1.0)
    assert 0.1 < sweep.digit_accuracy(base, "rotate") < 0.5 and exact_match(base, "rotate") == 0.0


def test_one_cached_full_run_reproduces(one_thread, cache):
    """One real-size run (a few seconds) against its cached numbers."""
    sweep = _script()
    cached = next(r for r in cache["runs"] if (r["task"], r["method"], r["size"], r["lr"]) == ("rotate", "ia3", None, 0.1))
    cfg = {k: cache[k] for k in sweep.SWEEP}
    assert _close(sweep.run("ia3", None, "rotate", 0.1, cfg), cached, tol=1e-5)
