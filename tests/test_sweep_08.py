"""The cache notebook 08 reads (lora_mini/data/sweep_08.json) matches what scripts/sweep_08.py computes now."""
import pytest

from sweeps import close, load_cache, load_script


@pytest.fixture(scope="module")
def cache():
    return load_cache("08")


def _script():
    return load_script("08")


def test_small_forgetting_matches_cache(one_thread, cache):
    sweep = _script()
    assert close(sweep.forgetting_sweep(sweep.SMALL_FORGET), cache["small"]["forgetting"])


def test_small_scarce_matches_cache(one_thread, cache):
    sweep = _script()
    assert close(sweep.scarce_sweep(sweep.SMALL_SCARCE), cache["small"]["scarce"])


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
    assert close(sweep.scarce_run("lora", "rotate", 64, 0, s["steps"], s["lr"]["lora"]), cached)
