"""The math of LoRA's variants, each an option of ``inject_lora`` named as in PEFT's ``LoraConfig``.

    rsLoRA  use_rslora=True            scaling alpha / sqrt(r) instead of alpha / r (lora.LoraConfig.scaling)
    DoRA    use_dora=True              m ⊙ (W + ΔW) / ‖W + ΔW‖_row, m learned (DoRA, row_norm)
    PiSSA   init_lora_weights="pissa"  A, B from the top-r SVD of W, the base keeps the rest (pissa_factors)
    LoRA+   loraplus_param_groups      B learns ``loraplus_lr_ratio`` times faster than A

As in PEFT (whose ``tuners/lora/layer.py`` imports ``dora.py``), this module sits below lora.py:
it works on tensors, parameter names and LoRA layers passed in, and lora.py builds on it
(``class DoRALinear(variants.DoRA, LoRALinear)``).
"""
from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn as nn
import torch.nn.functional as F

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


class DoRA:
    """DoRA's part of ``lora.DoRALinear``: a learned magnitude m per output row times the direction of W + ΔW.

        y = m ⊙ (W + ΔW) x / ‖W + ΔW‖_row + b,   ΔW = scaling · B A

    Written on top of a LoRALinear (``self.base``, ``lora_A``, ``lora_B``, ``delta_weight()``); m starts
    at ‖W‖_row, so with B = 0 the layer starts as its base.
    """

    use_dora = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)  # LoRALinear's (base, r, alpha, ...)
        self.lora_magnitude_vector = nn.Parameter(self.weight_norm())  # (out,) m = ‖W‖_row: output unchanged

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """A random, B zero, m = ‖W‖_row: the base again."""
        super().reset_parameters()
        if hasattr(self, "lora_magnitude_vector"):  # not yet there when LoRALinear.__init__ calls this
            self.lora_magnitude_vector.copy_(self.weight_norm())

    def weight_norm(self) -> torch.Tensor:
        return row_norm(self.base.weight + self.delta_weight())  # (out,) ‖W + ΔW‖_row, no gradient

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., in) -> (..., out): base(x) plus the change from rescaling each row to length m."""
        y = self.base(x)  # (..., out) = W x + b
        if self.merged or self.disabled:
            return y
        if self.training and isinstance(self.lora_dropout, nn.Dropout):
            x = self.lora_dropout(x)  # (..., in); as in PEFT, dropout feeds the whole DoRA term
            wx = F.linear(x, self.base.weight.to(x.dtype))  # (..., out) W x, no bias
        else:
            wx = y if self.base.bias is None else y - self.base.bias  # (..., out) W x, from the base's output
        scale = self.lora_magnitude_vector / self.weight_norm()  # (out,) m / ‖W + ΔW‖_row
        bax = self.scaling * F.linear(F.linear(x, self.lora_A), self.lora_B)  # (..., out) ΔW x
        return y + ((scale - 1) * wx + scale * bax)  # = scale ⊙ (W + ΔW) x + b without dropout

    @torch.no_grad()
    def merge(self) -> None:
        """W ← (m / ‖W + ΔW‖_row) ⊙ (W + ΔW), row by row. Does nothing if already merged."""
        if not self.merged:
            checks.float_base(self)
            self._unmerged_weight = self.base.weight.clone()  # (out, in): unmerge restores it exactly
            scale = self.lora_magnitude_vector / self.weight_norm()  # (out,)
            self.base.weight.copy_(scale[:, None] * (self.base.weight + self.delta_weight()))
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """W ← the weight kept by merge (dividing by the scale would fail where m = 0)."""
        if self.merged:
            self.base.weight.copy_(self._unmerged_weight)
            del self._unmerged_weight
            self.merged = False


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
    layer.config = replace(layer.config, init_lora_weights="pissa")  # a new config: it no longer fits a plain base


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
