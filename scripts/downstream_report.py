"""How fast LoRA learns each downstream task, on one CPU thread: ``python scripts/downstream_report.py``.

For each task: a fresh base, LoRA r=4 (alpha=8) on q_proj and v_proj, AdamW lr 1e-2, batch 64;
exact match every 50 steps until it reaches 95% (or 1,000 steps). Prints a markdown table.
"""
import time

import torch

from lora_mini import DOWNSTREAM_TASKS, evaluate, inject_lora, load_base, train


def main() -> None:
    torch.set_num_threads(1)
    print("| task | base exact match | LoRA exact match | steps | training time (1 thread) |")
    print("|---|---|---|---|---|")
    for task in DOWNSTREAM_TASKS:
        model = load_base()
        before = evaluate(model, task)[task]
        inject_lora(model, ["q_proj", "v_proj"], r=4, alpha=8)
        hist = train(model, task, steps=1000, lr=1e-2, eval_tasks=[task], eval_every=50, stop_at=0.95, progress=False)
        acc, steps = hist.accuracy[task][-1], hist.eval_steps[-1]
        print(f"| `{task}` | {100 * before:.1f}% | {100 * acc:.1f}% | {steps} | {hist.seconds:.1f} s |", flush=True)


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"\n(total {time.perf_counter() - t0:.0f} s)")
