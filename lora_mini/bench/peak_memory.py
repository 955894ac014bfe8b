"""Section 2, peak training memory: the accounting (``memory.account_peak``) next to the measured process peak."""
from __future__ import annotations

from functools import partial

import torch

from ..memory import account_peak, measure_peak_rss
from ..model import ToyGPT
from ..tasks import random_batch
from .common import BenchConfig, Check, lora_copy

MMAP_THRESHOLD = 64 * 1024  # glibc: blocks over 64 KiB are mmap-ed and returned when freed (see lora_mini.memory)


def bench_memory(cfg: BenchConfig) -> tuple[dict, list[Check]]:
    """account_peak next to the RSS peak of a fresh process, for LoRA and full fine-tuning.

    The process runs with glibc's mmap threshold fixed (``MMAP_THRESHOLD``), so freed blocks leave
    its RSS at once; the peak with the allocator's default is recorded too, to show the difference.
    """
    batch = random_batch(cfg.model, cfg.memory_batch_size, torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    base = ToyGPT(cfg.model)
    out = {}
    for name, targets, model in (("lora", cfg.targets, lora_copy(base, cfg)), ("full", (), base)):
        report = account_peak(model, batch)
        measure = partial(measure_peak_rss, targets, cfg.r, cfg.alpha, cfg.memory_batch_size, config=cfg.model)
        out[name] = {
            "accounted": report.as_dict(),
            "measured_rss": measure(mmap_threshold=MMAP_THRESHOLD),
            "measured_rss_glibc_default": measure(),
        }
    peak = {name: out[name]["accounted"]["total"] for name in out}
    rss = {name: out[name]["measured_rss"] for name in out}
    what = f"peak memory, batch {cfg.memory_batch_size}: LoRA / full"
    checks = [
        Check(f"{what} (measured)", rss["lora"] / rss["full"], 0.45),
        Check(f"{what} (accounted)", peak["lora"] / peak["full"], 0.45),
        *(Check(f"memory {n}: measured / accounted", rss[n] / peak[n], 1.15, at_least=0.85) for n in out),
    ]
    return out, checks
