"""The runs notebook 08 plots, cached: ``python scripts/sweep_08.py`` (``--small`` for a tiny case).

Writes lora_mini/data/sweep_08.json with

* ``forgetting``: full fine-tuning and LoRA (r=4 on q, v) trained only on a new task, at three learning
  rates each; every ``eval_every`` steps, held-out exact match on the new task and on the base's own
  tasks (copy, reverse, sort), with the adapter on; for LoRA also with the adapter off (disable_lora).
* ``scarce``: both methods trained for a fixed number of steps on fixed training sets of several sizes
  (``make_dataset``), several seeds; exact match on the training set itself and on held-out examples.
* ``small``: a tiny version of both, which tests/test_sweep_07.py re-runs and compares.

Deterministic: fixed seeds, one CPU thread.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from lora_mini import BASE_TASKS, disable_lora, evaluate, inject_lora, load_base, make_dataset, train
from lora_mini.tasks import N_DIGITS

OUT = Path(__file__).resolve().parent.parent / "lora_mini" / "data" / "sweep_08.json"
TARGETS, R, ALPHA = ["q_proj", "v_proj"], 4, 8
FORGET = {"task": "swap_pairs", "steps": 200, "eval_every": 25,
          "lrs": {"full": [1e-4, 3e-4, 1e-3], "lora": [1e-3, 3e-3, 1e-2]}}
SCARCE = {"tasks": ["rotate", "swap_pairs"], "sizes": [16, 64, 256, 1024, 2048], "seeds": [0, 1, 2],
          "steps": 150, "lr": {"full": 1e-3, "lora": 1e-2}}
SMALL_FORGET = {"task": "swap_pairs", "steps": 10, "eval_every": 5, "lrs": {"full": [1e-3], "lora": [1e-2]}}
SMALL_SCARCE = {"tasks": ["rotate"], "sizes": [16], "seeds": [0], "steps": 10, "lr": {"full": 1e-3, "lora": 1e-2}}


def fresh_model(method: str, seed: int = 0) -> torch.nn.Module:
    """The shipped base on the CPU; with method "lora", a rank-4 adapter on q and v (A drawn from ``seed``)."""
    torch.manual_seed(seed)
    model = load_base().cpu()
    if method == "lora":
        inject_lora(model, TARGETS, r=R, alpha=ALPHA)
    return model


@torch.no_grad()
def train_exact_match(model: torch.nn.Module, data: tuple[torch.Tensor, torch.Tensor]) -> float:
    """Exact match on the given examples themselves (one forward pass, as lora_mini.tasks.exact_match)."""
    model.eval()
    idx, targets = data
    logits, _ = model(idx)  # (N, T, vocab)
    guess = logits[..., :N_DIGITS].argmax(-1)  # (N, T)
    right = (guess == targets) | (targets == -100)
    return right.all(dim=1).float().mean().item()


def forgetting_run(method: str, lr: float, task: str, steps: int, eval_every: int) -> dict:
    """Train on ``task`` only; exact match on it and on BASE_TASKS along the way (adapter on)."""
    model = fresh_model(method)
    hist = train(model, task, steps=steps, lr=lr, eval_tasks=[task, *BASE_TASKS], eval_every=eval_every,
                 progress=False)
    run = {"method": method, "lr": lr, "eval_steps": hist.eval_steps, "accuracy": hist.accuracy}
    if method == "lora":
        with disable_lora(model):
            run["adapter_off"] = evaluate(model, [task, *BASE_TASKS])
    return run


def scarce_run(method: str, task: str, n: int, seed: int, steps: int, lr: float) -> dict:
    """Train on a fixed set of ``n`` examples; exact match on that set and on held-out examples."""
    model = fresh_model(method, seed)
    data = make_dataset(task, n, seed=seed)
    train(model, data, steps=steps, lr=lr, seed=seed, progress=False)
    return {"method": method, "task": task, "n": n, "seed": seed,
            "train": train_exact_match(model, data), "held_out": evaluate(model, task)[task]}


def forgetting_sweep(cfg: dict) -> dict:
    runs = [forgetting_run(m, lr, cfg["task"], cfg["steps"], cfg["eval_every"])
            for m, lrs in cfg["lrs"].items() for lr in lrs]
    return {**cfg, "base": evaluate(load_base().cpu(), [cfg["task"], *BASE_TASKS]), "runs": runs}


def scarce_sweep(cfg: dict) -> dict:
    runs = [scarce_run(m, t, n, s, cfg["steps"], lr) for t in cfg["tasks"] for n in cfg["sizes"]
            for s in cfg["seeds"] for m, lr in cfg["lr"].items()]
    return {**cfg, "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--small", action="store_true", help="only the tiny case (seconds), printed, not saved")
    args = parser.parse_args()
    torch.set_num_threads(1)  # one thread: bit-for-bit reproducible on a CPU
    t0 = time.perf_counter()
    small = {"forgetting": forgetting_sweep(SMALL_FORGET), "scarce": scarce_sweep(SMALL_SCARCE)}
    if args.small:
        print(json.dumps(small, indent=1))
        return
    result = {"forgetting": forgetting_sweep(FORGET), "scarce": scarce_sweep(SCARCE), "small": small}
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out} in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
