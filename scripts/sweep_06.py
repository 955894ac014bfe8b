"""Train the adapters notebook 06 looks inside, and cache them: ``python scripts/sweep_06.py``.

Writes lora_mini/data/sweep_06.safetensors: LoRA adapters on q_proj and v_proj for one task at
r in {1, 2, 4, 8, 16, 32, 64} (plus a second seed at r = 8 and r = 64), the ΔW of full
fine-tuning on the same task, and (in the metadata) exact match of every run and of the
"which matrices" budget runs. Deterministic: fixed seeds, one CPU thread.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from lora_mini import evaluate, inject_lora, load_base, lora_state_dict, train

OUT = Path(__file__).resolve().parent.parent / "lora_mini" / "data" / "sweep_06.safetensors"
TASK, STEPS, LR, FULL_LR = "sort_desc", 300, 1e-2, 1e-3
RANKS = (1, 2, 4, 8, 16, 32, 64)
BUDGET = {"q (r=8)": (["q_proj"], 8), "q,v (r=4)": (["q_proj", "v_proj"], 4), "q,k,v,o (r=2)": (["q_proj", "k_proj", "v_proj", "o_proj"], 2)}
BUDGET_TASKS = ("rotate", "sort_desc")


def lora_run(task: str, targets: list[str], r: int, seed: int, steps: int) -> tuple[dict[str, torch.Tensor], float]:
    """Train one adapter (alpha = 2r, so the scaling is 2 at every rank); its tensors and exact match."""
    torch.manual_seed(seed)
    model = load_base().cpu()
    inject_lora(model, targets, r=r, alpha=2 * r)
    train(model, task, steps=steps, lr=LR, seed=seed, progress=False)
    return {k: v.clone() for k, v in lora_state_dict(model).items()}, evaluate(model, task)[task]


def full_run(task: str, steps: int) -> tuple[dict[str, torch.Tensor], float]:
    """Fully fine-tune the base; ΔW = W_after - W_before of every q_proj and v_proj weight."""
    torch.manual_seed(0)
    model, before = load_base().cpu(), dict(load_base().cpu().named_parameters())
    train(model, task, steps=steps, lr=FULL_LR, progress=False)
    deltas = {n: (p - before[n]).detach() for n, p in model.named_parameters() if n.endswith(("q_proj.weight", "v_proj.weight"))}
    return deltas, evaluate(model, task)[task]


def sweep(steps: int = STEPS, ranks=RANKS, budget: bool = True) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, acc = {}, {"lora": {}, "full": None, "budget": {}}
    runs = [(r, 0) for r in ranks] + [(r, 1) for r in (8, 64) if r in ranks]
    for r, seed in runs:
        state, acc["lora"][f"r{r}_s{seed}"] = lora_run(TASK, ["q_proj", "v_proj"], r, seed, steps)
        tensors.update({f"r{r}_s{seed}.{k}": v for k, v in state.items()})
    deltas, acc["full"] = full_run(TASK, steps)
    tensors.update({f"full.{k}": v for k, v in deltas.items()})
    for name, (targets, r) in BUDGET.items() if budget else ():
        acc["budget"][name] = {t: lora_run(t, targets, r, 0, steps)[1] for t in BUDGET_TASKS}
    return tensors, acc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    torch.set_num_threads(1)
    tensors, acc = sweep()
    small, _ = sweep(steps=5, ranks=(1,), budget=False)  # the case the test re-runs
    tensors.update({f"small.{k}": v for k, v in small.items()})
    meta = {"task": TASK, "steps": str(STEPS), "accuracy": json.dumps(acc)}
    save_file({k: v.contiguous() for k, v in tensors.items()}, args.out, metadata=meta)
    print(json.dumps(acc, indent=1))


if __name__ == "__main__":
    main()
