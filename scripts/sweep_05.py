"""The grids notebook 05 plots, cached: ``python scripts/sweep_05.py`` (``--small`` for a tiny case).

Writes lora_mini/data/sweep_05.json. Every run is ``lora_mini.tuning.run`` from the shipped base, seed 0,
batch 64, the same batches for every run of a grid; held-out exact match every 25 steps.

* ``lr``: LoRA (r=4 on q, v, alpha 8) and full fine-tuning at seven learning rates, one task.
* ``alpha_lr``: LoRA at r=4 on a grid of alpha x learning rate, both in powers of two, so that a
  diagonal of the grid is a line of constant alpha * lr.
* ``rank``: r from 1 to 64 at alpha 8, scaled by alpha/r and by alpha/sqrt(r) (rsLoRA).
* ``rank_need``: r = 1, 2, 4, 8 (alpha = 2r, so the scale stays 2) on each downstream task.
* ``modules``: q,v / q,k,v,o / all six Linear types at equal r and at an equal trainable budget,
  and the MLP alone.
* ``small``: a tiny version of each grid, which tests/test_sweep_05.py re-runs and compares.

Deterministic: fixed seeds, one CPU thread.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from lora_mini.tuning import ALL_LINEAR, ATTENTION, QV, RunConfig, run

OUT = Path(__file__).resolve().parent.parent / "lora_mini" / "data" / "sweep_05.json"
TASK, STEPS = "swap_pairs", 150  # notebook 04's task and steps
LR = {"task": TASK, "steps": STEPS, "lrs": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1]}
ALPHA_LR = {"task": TASK, "steps": STEPS, "r": 4, "alphas": [1, 2, 4, 8, 16, 32, 64],
            "lrs": [1.25e-3, 2.5e-3, 5e-3, 1e-2, 2e-2, 4e-2, 8e-2]}
RANK = {"task": TASK, "steps": STEPS, "lr": 1e-2, "alpha": 8, "ranks": [1, 2, 4, 8, 16, 32, 64]}
RANK_NEED = {"steps": {"rotate": 100, "swap_pairs": 150, "increment": 250, "sort_desc": 400}, "lr": 1e-2,
             "ranks": [1, 2, 4, 8]}
MODULES = {"task": TASK, "steps": STEPS, "lr": 1e-2, "mlp_steps": 600,
           "runs": {"q,v r=4": (QV, 4), "q,k,v,o r=4": (ATTENTION, 4), "all linear r=4": (ALL_LINEAR, 4),
                    "q,v r=18": (QV, 18), "q,k,v,o r=9": (ATTENTION, 9), "fc1,fc2 r=4": (("fc1", "fc2"), 4)}}
SMALL = {"lr": {**LR, "steps": 10, "lrs": [1e-3, 1e-2]},
         "alpha_lr": {**ALPHA_LR, "steps": 10, "alphas": [4, 8], "lrs": [1e-2]},
         "rank": {**RANK, "steps": 10, "ranks": [1, 4]},
         "rank_need": {**RANK_NEED, "steps": {"rotate": 10}, "ranks": [1, 2]},
         "modules": {**MODULES, "steps": 10, "mlp_steps": 10, "runs": {"q,v r=4": (QV, 4), "q,v r=18": (QV, 18)}}}


def summary(result) -> dict:
    """A run as the cache stores it: its settings, exact match along the way, the mean loss of the last
    10 steps and ‖ΔW‖ (the per-step loss is left out to keep the file small)."""
    d = result.to_dict()
    loss = d.pop("loss")
    return {**d, "final_loss": sum(loss[-10:]) / len(loss[-10:])}


def lr_sweep(cfg: dict) -> dict:
    runs = [summary(run(RunConfig(task=cfg["task"], steps=cfg["steps"], lr=lr, method=m)))
            for m in ("lora", "full") for lr in cfg["lrs"]]
    return {**cfg, "runs": runs}


def alpha_lr_sweep(cfg: dict) -> dict:
    runs = [summary(run(RunConfig(task=cfg["task"], steps=cfg["steps"], lr=lr, r=cfg["r"], lora_alpha=a)))
            for a in cfg["alphas"] for lr in cfg["lrs"]]
    return {**cfg, "runs": runs}


def rank_sweep(cfg: dict) -> dict:
    runs = [summary(run(RunConfig(task=cfg["task"], steps=cfg["steps"], lr=cfg["lr"], r=r, lora_alpha=cfg["alpha"],
                                  use_rslora=rs)))
            for rs in (False, True) for r in cfg["ranks"] if not (rs and r == 1)]  # at r=1 the two rules agree
    return {**cfg, "runs": runs}


def rank_need_sweep(cfg: dict) -> dict:
    runs = [summary(run(RunConfig(task=task, steps=steps, lr=cfg["lr"], r=r, lora_alpha=2 * r)))
            for task, steps in cfg["steps"].items() for r in cfg["ranks"]]
    return {**cfg, "runs": runs}


def modules_sweep(cfg: dict) -> dict:
    runs = {}
    for name, (targets, r) in cfg["runs"].items():
        steps = cfg["mlp_steps"] if "q_proj" not in targets else cfg["steps"]
        runs[name] = summary(run(RunConfig(task=cfg["task"], steps=steps, lr=cfg["lr"], target_modules=targets,
                                           r=r, lora_alpha=2 * r)))
    return {**{k: v for k, v in cfg.items() if k != "runs"}, "runs": runs}


SWEEPS = {"lr": lr_sweep, "alpha_lr": alpha_lr_sweep, "rank": rank_sweep, "rank_need": rank_need_sweep,
          "modules": modules_sweep}
CONFIGS = {"lr": LR, "alpha_lr": ALPHA_LR, "rank": RANK, "rank_need": RANK_NEED, "modules": MODULES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--small", action="store_true", help="only the tiny case (seconds), printed, not saved")
    args = parser.parse_args()
    torch.set_num_threads(1)  # one thread: bit-for-bit reproducible on a CPU
    t0 = time.perf_counter()
    small = {name: sweep(SMALL[name]) for name, sweep in SWEEPS.items()}
    if args.small:
        print(json.dumps(small, indent=1))
        return
    result = {}
    for name, sweep in SWEEPS.items():
        result[name] = sweep(CONFIGS[name])
        print(f"{name}: {len(result[name]['runs'])} runs, {time.perf_counter() - t0:.0f} s so far", flush=True)
    result["small"] = small
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out} in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
