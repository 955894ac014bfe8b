"""The training runs notebook 09 plots, cached: ``python scripts/sweep_09.py`` (``--small`` for a tiny case).

Writes lora_mini/data/sweep_09.json with

* ``runs``: LoRA and its five peers (BitFit, adapters, prefix tuning, prompt tuning, (IA)³) at two
  parameter budgets each, trained from the shipped base on each task of ``SWEEP["tasks"]`` at every
  learning rate of ``SWEEP["lrs"]``; every ``eval_every`` steps, held-out exact match (the whole
  answer right), and at the end the held-out digit accuracy (the share of answer digits right; chance
  is 10%) and the last training loss. With the base's own scores (``base``) this lets the notebook pick
  each method's best learning rate and read its steps to a target.
* ``small``: a tiny version, which tests/test_sweep_09.py re-runs and compares.

Deterministic: fixed seeds, one CPU thread.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from pathlib import Path

import torch

from lora_mini import inject_lora, load_base, train
from lora_mini.peers import inject_peer
from lora_mini.tasks import N_DIGITS, eval_set, exact_match

OUT = Path(__file__).resolve().parent.parent / "lora_mini" / "data" / "sweep_09.json"
# (method, size): two budgets, about 0.8-1.2 k and 2.2-3.5 k trainable numbers. LoRA's size is r on q and v.
CONFIGS = [("lora", 1), ("adapters", 1), ("prefix", 2), ("prompt", 8), ("ia3", None),
           ("lora", 4), ("adapters", 4), ("prefix", 8), ("prompt", 32), ("bitfit", None)]
SWEEP = {"tasks": ["rotate", "increment"], "steps": 200, "eval_every": 20, "batch_size": 32,
         "lrs": [3e-3, 1e-2, 3e-2, 1e-1, 3e-1]}
SMALL = {"tasks": ["rotate"], "steps": 6, "eval_every": 3, "batch_size": 16, "lrs": [1e-2]}
SMALL_CONFIGS = [("lora", 1), ("adapters", 1), ("prefix", 2), ("prompt", 8), ("ia3", None), ("bitfit", None)]


def fresh_model(method: str, size: int | None) -> tuple[torch.nn.Module, int]:
    """The shipped base on the CPU with ``method`` put in; and its trainable-parameter count."""
    torch.manual_seed(0)
    model = load_base().cpu()
    if method == "lora":
        inject_lora(model, ["q_proj", "v_proj"], r=size, alpha=2 * size)
        return model, sum(p.numel() for p in model.parameters() if p.requires_grad)
    return model, inject_peer(model, method, size)


@torch.no_grad()
def digit_accuracy(model: torch.nn.Module, task: str) -> float:
    """Share of answer digits right on the held-out set (one forward pass, as exact_match scores)."""
    model.eval()
    idx, targets = eval_set(task)
    guess = model(idx)[0][..., :N_DIGITS].argmax(-1)  # (N, T)
    scored = targets != -100
    return (guess == targets)[scored].float().mean().item()


def run(method: str, size: int | None, task: str, lr: float, cfg: dict) -> dict:
    """One training run; exact match every ``eval_every`` steps, digit accuracy and loss at the end."""
    model, n = fresh_model(method, size)
    hist = train(model, task, steps=cfg["steps"], lr=lr, batch_size=cfg["batch_size"],
                 eval_tasks=[task], eval_every=cfg["eval_every"], progress=False)
    return {"method": method, "size": size, "task": task, "lr": lr, "trainable": n,
            "eval_steps": hist.eval_steps, "accuracy": hist.accuracy[task],
            "digits": digit_accuracy(model, task), "final_loss": hist.loss[-1]}


def _run(spec: tuple) -> dict:
    torch.set_num_threads(1)
    return run(*spec)


def sweep(cfg: dict, configs: list, jobs: int = 1) -> dict:
    """Every run of ``cfg`` for ``configs``; ``jobs`` processes share them (the same numbers, each on one thread)."""
    specs = [(m, s, task, lr, cfg) for task in cfg["tasks"] for m, s in configs for lr in cfg["lrs"]]
    if jobs > 1:
        with multiprocessing.get_context("spawn").Pool(jobs) as pool:
            runs = pool.map(_run, specs, chunksize=1)
    else:
        runs = [run(*spec) for spec in specs]
    base = load_base().cpu()
    scores = {t: {"exact_match": exact_match(base, t), "digits": digit_accuracy(base, t)} for t in cfg["tasks"]}
    return {**cfg, "base": scores, "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--small", action="store_true", help="only the tiny case (seconds), printed, not saved")
    parser.add_argument("--jobs", type=int, default=1, help="processes to share the runs (results do not change)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # one thread: bit-for-bit reproducible on a CPU
    t0 = time.perf_counter()
    small = sweep(SMALL, SMALL_CONFIGS)
    if args.small:
        print(json.dumps(small, indent=1))
        return
    result = {**sweep(SWEEP, CONFIGS, args.jobs), "configs": CONFIGS, "small": small}
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out} in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
