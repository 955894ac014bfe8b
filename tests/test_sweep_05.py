"""The cache notebook 05 reads (lora_mini/data/sweep_05.json) matches what scripts/sweep_05.py computes now."""
import pytest

from sweeps import close, load_cache, load_script, plain


@pytest.fixture(scope="module")
def cache():
    return load_cache("05")


def _script():
    return load_script("05")


@pytest.mark.parametrize("name", ["lr", "alpha_lr", "rank", "rank_need", "modules"])
def test_small_case_matches_cache(one_thread, cache, name):
    sweep = _script()
    assert close(plain(sweep.SWEEPS[name](sweep.SMALL[name])), cache["small"][name], relative=True)


def test_cache_has_the_configured_grids(cache):
    sweep = _script()
    lr, grid, rank, need, modules = (cache[k] for k in ("lr", "alpha_lr", "rank", "rank_need", "modules"))
    assert [(r["method"], r["lr"]) for r in lr["runs"]] == [(m, x) for m in ("lora", "full") for x in sweep.LR["lrs"]]
    assert [(r["lora_alpha"], r["lr"]) for r in grid["runs"]] == [(a, x) for a in sweep.ALPHA_LR["alphas"]
                                                                  for x in sweep.ALPHA_LR["lrs"]]
    assert [(r["r"], r["use_rslora"]) for r in rank["runs"]] == [(r, rs) for rs in (False, True)
                                                                 for r in sweep.RANK["ranks"] if not (rs and r == 1)]
    assert {(r["task"], r["r"]) for r in need["runs"]} == {(t, r) for t in sweep.RANK_NEED["steps"]
                                                           for r in sweep.RANK_NEED["ranks"]}
    assert list(modules["runs"]) == list(sweep.MODULES["runs"])
    for name, (targets, r) in sweep.MODULES["runs"].items():
        assert modules["runs"][name]["target_modules"] == list(targets) and modules["runs"][name]["r"] == r
    every = [*lr["runs"], *grid["runs"], *rank["runs"], *need["runs"], *modules["runs"].values()]
    assert all(0 <= a <= 1 for run in every for a in run["accuracy"])
    assert all(run["eval_steps"][-1] == run["steps"] for run in every)


def test_equal_budget_runs_train_the_same_number_of_parameters(cache):
    runs = cache["modules"]["runs"]
    assert runs["q,v r=18"]["trainable"] == runs["q,k,v,o r=9"]["trainable"] == runs["all linear r=4"]["trainable"]


def test_one_cached_full_size_run_reproduces(one_thread, cache):
    """LoRA at lr 1e-2 from the learning-rate sweep (150 steps, a few seconds) against its cached numbers."""
    sweep = _script()
    from lora_mini.tuning import RunConfig, run

    cached = next(r for r in cache["lr"]["runs"] if r["method"] == "lora" and r["lr"] == 1e-2)
    again = sweep.summary(run(RunConfig(task=cache["lr"]["task"], steps=cache["lr"]["steps"], lr=1e-2)))
    assert close(plain(again), cached, relative=True)
