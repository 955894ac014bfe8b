"""The body of :func:`lora_mini.memory.measure_peak_rss`'s measuring process: build, warm up, train, read the peak.

    python -m lora_mini.memory_child '{"targets": ["q_proj"], "r": 4, "alpha": 8, "batch_size": 64, "steps": 3,
                                       "config": null}'

prints the peak resident memory the training added, in bytes. The accounting it cross-checks is in
``lora_mini.memory``; why a process peak can differ from the tensors it holds is in that module's doc.
"""
from __future__ import annotations

import gc
import json
import resource
import sys

import torch

from .lora import inject_lora
from .model import GPTConfig, ToyGPT
from .pretrain import load_base
from .tasks import make_batch, random_batch
from .train import optimizer_step


def rss_kib(field: str) -> int:
    """A line of /proc/self/status in KiB: "VmRSS:" (resident now) or "VmHWM:" (its peak)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field))


def train_steps(spec: dict, batch_size: int, steps: int) -> None:
    """Build the model of ``spec`` (the shipped base, or ToyGPT(spec["config"])), with LoRA on spec["targets"]
    if any, and train it ``steps`` AdamW steps at ``batch_size``."""
    torch.manual_seed(0)
    config = spec.get("config") and GPTConfig(**spec["config"])
    model = (ToyGPT(config) if config else load_base().cpu()).train()
    if spec["targets"]:
        inject_lora(model, spec["targets"], r=spec["r"], alpha=spec["alpha"])
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        batch = random_batch(config, batch_size, g) if config else make_batch("rotate", batch_size, g)
        optimizer_step(model, opt, *batch)


def peak_added(spec: dict) -> int:
    """Warm up, take a baseline, train, read the peak: the bytes of resident memory the training added.

    The warm-up (one step at batch 1) pages in torch's kernels; the baseline is taken after it,
    so the peak counts the model, its optimizer state and the steps, not Python and torch.
    """
    torch.set_num_threads(1)
    train_steps(spec, batch_size=1, steps=1)  # page in torch's kernels so they are not counted
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the kernel's peak-RSS mark (VmHWM) to the current RSS
        before, peak = rss_kib("VmRSS:"), lambda: rss_kib("VmHWM:")
    except OSError:  # not Linux: ru_maxrss is a peak that includes the imports and warm-up
        unit = 1 if sys.platform == "darwin" else 1024  # macOS reports bytes, others KiB
        before, peak = 0, lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit // 1024
    train_steps(spec, batch_size=spec["batch_size"], steps=spec["steps"])
    return (peak() - before) * 1024


if __name__ == "__main__":
    print(peak_added(json.loads(sys.argv[1])))
