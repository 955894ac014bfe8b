"""The math of LoRA's variants, each an option of ``inject_lora`` named as in PEFT's ``LoraConfig``.

    rsLoRA  use_rslora=True            scaling alpha / sqrt(r) instead of alpha / r (LoraConfig.scaling)
    DoRA    use_dora=True              m ⊙ (W + ΔW) / ‖W + ΔW‖_row, m learned (lora.DoRALinear, row_norm)
    PiSSA   init_lora_weights="pissa"  A, B from the top-r SVD of W, the base keeps the rest (pissa_factors)
    LoRA+   loraplus_param_groups      B learns ``loraplus_lr_ratio`` times faster than A

As in PEFT (whose ``tuners/lora/layer.py`` imports ``dora.py``), this module sits below the
layers: it works on tensors and parameter names, and lora.py calls it.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from . import checks
from .errors import LoraValueError


def row_norm(weight: torch.Tensor) -> torch.Tensor:
    """DoRA's ‖W + ΔW‖_row for ``weight`` = W + ΔW (out, in): the norm of each output row, shape (out,).

    Computed without gradient (a constant in backward, as in the DoRA paper, section 4.3) and at least
    1e-12, so an all-zero row (direction undefined) gets scale m / 1e-12 times a zero row: zero, never 0 / 0.
    The paper's "column norm" is of Wᵀ, (in, out): the same numbers.
    """
    with torch.no_grad():
        return torch.linalg.norm(weight, dim=1).clamp_min(1e-12)  # (out,)


@torch.no_grad()
def pissa_factors(weight: torch.Tensor, r: int, scaling: float) -> tuple[torch.Tensor, torch.Tensor]:
    """PiSSA's (A (r, in), B (out, r)) for W (out, in): scaling · B A = U_r S_r V_rᵀ, the top-r part of W.

    With W = U S Vᵀ: A = sqrt(S_r / scaling) V_rᵀ and B = U_r sqrt(S_r / scaling) (as PEFT does).
    """
    U, S, Vh = torch.linalg.svd(weight.float(), full_matrices=False)  # (out, k), (k,), (k, in)
    root = (S[:r] / scaling).sqrt()  # (r,)
    return root[:, None] * Vh[:r], U[:, :r] * root  # (r, in), (out, r)


@torch.no_grad()
def pissa_init(layer: nn.Module, A: torch.Tensor, B: torch.Tensor) -> None:
    """Give a new LoRA layer PiSSA's A and B; its base keeps the residual W - U_r S_r V_rᵀ: output unchanged."""
    layer.lora_A.copy_(A)  # (r, in)
    layer.lora_B.copy_(B)  # (out, r)
    layer.base.weight -= layer.delta_weight()  # (out, in): the residual


def loraplus_param_groups(model: nn.Module, lr: float, loraplus_lr_ratio: float = 16.0) -> list[dict]:
    """LoRA+: parameter groups in which every B trains ``loraplus_lr_ratio`` times faster than A.

    For ``torch.optim.AdamW(loraplus_param_groups(model, lr=1e-3))``. As in PEFT's
    ``create_loraplus_optimizer``, the groups go by parameter name: B and DoRA's magnitude vectors
    are fast, A and any other trainable parameter slow. Each group also carries a "name" for printing.
    """
    checks.model(model, "loraplus_param_groups")
    checks.number("lr", lr, "lr=1e-3")
    checks.number("loraplus_lr_ratio", loraplus_lr_ratio, "loraplus_lr_ratio=16")
    named = [(name.rpartition(".")[2], p) for name, p in model.named_parameters()]  # (last part of the name, p)
    if not any(name == "lora_A" for name, _ in named):
        raise LoraValueError("model has no LoRA layers; call inject_lora(model, targets, r, alpha) first")
    trainable = [(name, p) for name, p in named if p.requires_grad]
    fast = {id(p) for name, p in trainable if name in ("lora_B", "lora_magnitude_vector")}
    return [
        {"name": "lora_A and the rest", "params": [p for _, p in trainable if id(p) not in fast], "lr": lr},
        {"name": "lora_B", "params": [p for _, p in trainable if id(p) in fast], "lr": lr * loraplus_lr_ratio},
    ]
