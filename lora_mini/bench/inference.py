"""Section 3, inference latency: merged and unmerged LoRA vs the base model (no grad)."""
from __future__ import annotations

import copy
from functools import partial

import torch
import torch.nn as nn

from ..lora import LoRALinear, merge_lora
from ..model import ToyGPT
from ..tasks import random_batch
from .common import BenchConfig, Check, lora_copy
from .flops import matmul_flops
from .timing import interleaved


def bench_inference(cfg: BenchConfig) -> tuple[dict, list[Check]]:
    """Median forward time of the base, the merged and the unmerged LoRA model (no grad)."""
    torch.manual_seed(0)
    base = ToyGPT(cfg.model).eval()
    unmerged = lora_copy(base, cfg).eval()
    for layer in unmerged.modules():
        if isinstance(layer, LoRALinear):
            nn.init.normal_(layer.lora_B, std=0.02)  # a trained-looking adapter: ΔW != 0
    merged = copy.deepcopy(unmerged)
    merge_lora(merged)
    idx, _ = random_batch(cfg.model, cfg.inference_batch_size, torch.Generator().manual_seed(0))
    with torch.inference_mode():
        max_diff = (merged(idx)[0] - unmerged(idx)[0]).abs().max().item()
        models = {"base": base, "merged": merged, "unmerged": unmerged}
        samples = interleaved({name: partial(model, idx) for name, model in models.items()}, cfg)
    f = {m: matmul_flops(cfg.model, *idx.shape, m, cfg.targets, cfg.r).forward for m in ("floor", "lora")}
    flops = {"base": f["floor"], "merged": f["floor"], "unmerged": f["lora"]}
    predicted = flops["unmerged"] / flops["base"]
    checks = [
        Check("inference: merged LoRA / base", samples.ratio("merged", "base"), 1.02, 1.0),
        Check("inference: unmerged LoRA / base (reported)", samples.ratio("unmerged", "base"), None, predicted),
    ]
    return {**samples.figures(flops), "merged_vs_unmerged_max_abs_diff": max_diff}, checks
