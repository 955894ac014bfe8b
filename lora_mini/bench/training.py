"""Section 1, the training step: LoRA vs full fine-tuning vs the floor (frozen forward + input-gradient backward)."""
from __future__ import annotations

import copy
from functools import partial

import torch
import torch.nn as nn

from ..model import ToyGPT
from ..tasks import random_batch
from ..train import optimizer_step
from .common import BenchConfig, Check, lora_copy
from .flops import matmul_flops
from .timing import interleaved


def floor_model(base: ToyGPT) -> ToyGPT:
    """A frozen copy of ``base`` whose backward computes input gradients only: the floor for LoRA.

    With W frozen, a LoRA step skips every weight-gradient product and nearly all optimizer work,
    but its backward must still carry the gradient down through every block to block 0's q_proj.
    The floor does that and no more: every parameter is frozen and the token-embedding output
    requires grad, so backward runs through all blocks, as far as the embeddings, computing input
    gradients and nothing else. It also computes block 0's q, k, v input gradients, which LoRA
    may skip (nothing below them trains); ``matmul_flops`` counts that head start.
    """
    floor = copy.deepcopy(base).train().requires_grad_(False)
    floor.tok_emb.register_forward_hook(_output_requires_grad)
    return floor


def _output_requires_grad(module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
    return output.requires_grad_()  # a frozen embedding's output is a leaf: backward stops here


def floor_step(model: ToyGPT, idx: torch.Tensor, targets: torch.Tensor) -> None:
    """Forward and input-gradient backward on idx (B, T), targets (B, T): no weight gradients, no optimizer."""
    _, loss = model(idx, targets)
    loss.backward()


def bench_training(cfg: BenchConfig, allocator: str = "") -> tuple[dict, list[Check]]:
    """Median step time of the floor, LoRA and full fine-tuning, with their matmul FLOPs.

    ``allocator``, if given, names the malloc settings in the checks and makes them reported only.
    """
    torch.manual_seed(0)
    base = ToyGPT(cfg.model)
    full, lora, floor = copy.deepcopy(base).train(), lora_copy(base, cfg).train(), floor_model(base)
    batch = random_batch(cfg.model, cfg.batch_size, torch.Generator().manual_seed(0))
    opt_full = torch.optim.AdamW(full.parameters(), lr=1e-3)
    opt_lora = torch.optim.AdamW([p for p in lora.parameters() if p.requires_grad], lr=1e-3)
    samples = interleaved(
        {
            "floor": partial(floor_step, floor, *batch),
            "lora": partial(optimizer_step, lora, opt_lora, *batch),
            "full": partial(optimizer_step, full, opt_full, *batch),
        },
        cfg,
    )
    flops = {m: matmul_flops(cfg.model, *batch[0].shape, m, cfg.targets, cfg.r).total for m in samples.seconds}
    suffix, targets = (f" ({allocator}, reported)", (None, None)) if allocator else ("", (1.03, 0.70))
    checks = [
        Check(f"training step: LoRA / {name}{suffix}", samples.ratio("lora", run), target, flops["lora"] / flops[run])
        for name, run, target in (("floor", "floor", targets[0]), ("full fine-tuning", "full", targets[1]))
    ]
    return samples.figures(flops), checks

