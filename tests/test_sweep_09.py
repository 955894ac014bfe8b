"""The cache notebook 09 reads (lora_mini/data/sweep_09.json) matches what scripts/sweep_09.py computes now."""
import pytest

from sweeps import close, load_cache, load_script


@pytest.fixture(scope="module")
def cache():
    return load_cache("09")


def _script():
    return load_script("09")


def test_small_sweep_matches_cache(one_thread, cache):
    sweep = _script()
    assert close(sweep.sweep(sweep.SMALL, sweep.SMALL_CONFIGS), cache["small"])


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
    assert close(sweep.run("ia3", None, "rotate", 0.1, cfg), cached, tol=1e-5)
