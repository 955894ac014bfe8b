"""Floating-point operations of a training step or a forward pass, counted by PyTorch's FlopCounterMode.

A count, not a timing: it is the same on every run and every machine, so a notebook can assert it where a
clock on a busy machine would flake. What PyTorch counts is the matrix products (``mm``, ``addmm``, ``bmm``,
attention), 2 FLOPs per multiply-add; elementwise work (GELU, LayerNorm, softmax, dequantising a 4-bit
weight) and the optimizer's update are not in the count.

    from lora_mini.flops import step_flops, forward_flops
    step_flops(model, make_batch("rotate", 64))   # forward + backward of one training step
    forward_flops(model, idx)                     # one forward pass, no gradients (serving)
"""
from __future__ import annotations

import copy

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

from . import checks
from .errors import LoraTypeError, LoraValueError


def attention_flops(query, key, value, *args, out_shape=None, **kwargs) -> int:
    """Shapes (B, H, T, D) -> FLOPs of q kᵀ and scores · v: PyTorch's formula (the causal mask's square in full)."""
    return sdpa_flop_count(query, key, value)


def attention_backward_flops(grad_out, query, key, value, *args, out_shape=None, **kwargs) -> int:
    """Shapes (B, H, T, D) -> FLOPs of attention's backward: PyTorch's formula (5 products for forward's 2)."""
    return sdpa_backward_flop_count(grad_out, query, key, value)


aten = torch.ops.aten
# torch 2.13's counter has formulas for the GPU attention kernels only; the CPU kernel does the same products.
CPU_ATTENTION = {
    aten._scaled_dot_product_flash_attention_for_cpu: attention_flops,
    aten._scaled_dot_product_flash_attention_for_cpu_backward: attention_backward_flops,
}


def flop_counter() -> FlopCounterMode:
    """PyTorch's FlopCounterMode, silent, with attention on the CPU counted too."""
    return FlopCounterMode(display=False, custom_mapping=CPU_ATTENTION)


def step_flops(model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> int:
    """FLOPs of one training step's forward and backward on ``batch`` = (idx (B, T), targets (B, T)).

    Runs on a copy in train mode, so ``model`` (its weights and gradients) is not changed. A frozen
    weight gets no gradient, so its weight-gradient product is not computed and not counted.
    """
    checks.model(model, "step_flops")
    if not (isinstance(batch, tuple) and len(batch) == 2 and all(isinstance(t, torch.Tensor) for t in batch)):
        raise LoraTypeError(f"batch must be a tuple (idx, targets) of two tensors, got {type(batch).__name__}; "
                            "make one with make_batch(task, batch_size)")
    if not any(p.requires_grad for p in model.parameters()):
        raise LoraValueError("the model has no trainable parameter, so a training step has no backward; "
                             "inject an adapter (inject_lora) or unfreeze weights first")
    m = copy.deepcopy(model).train()
    idx, targets = batch
    with flop_counter() as counter:
        _, loss = m(idx, targets)
        loss.backward()
    return counter.get_total_flops()


def forward_flops(model: torch.nn.Module, idx: torch.Tensor) -> int:
    """FLOPs of one forward pass on token ids ``idx`` (B, T), without gradients, as a server runs it."""
    checks.model(model, "forward_flops")
    if not isinstance(idx, torch.Tensor):
        raise LoraTypeError(f"idx must be a tensor of token ids (B, T), got {type(idx).__name__}")
    with torch.no_grad(), flop_counter() as counter:
        model(idx)
    return counter.get_total_flops()
