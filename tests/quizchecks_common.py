"""What the numeric quiz answers are recomputed from: the shipped base, real LoRA layers, real runs.
Shared by tests/quizchecks_*.py (one file per group of notebooks, so that their CHECKS can be edited apart)."""
from __future__ import annotations

import functools

import torch
import torch.nn as nn

from lora_mini import (
    LoRALinear,
    account_training_step,
    count_parameters,
    inject_lora,
    inject_peer,
    load_base,
    make_batch,
    quantize_base,
)


@functools.lru_cache(maxsize=1)
def _base_state() -> dict:
    return {k: v.clone() for k, v in load_base().cpu().state_dict().items()}


def _base() -> nn.Module:
    model = load_base().cpu()
    model.load_state_dict(_base_state())
    return model


def _lora(targets, r, alpha=None) -> nn.Module:
    model = _base()
    inject_lora(model, targets, r=r, alpha=alpha or 2 * r)
    return model


def _lora_numbers(n_in: int, n_out: int, r: int) -> int:
    """Trainable numbers of a LoRALinear around an (n_out, n_in) Linear; on the meta device, so no memory."""
    return count_parameters(LoRALinear(nn.Linear(n_in, n_out, device="meta"), r=r, alpha=2 * r)).trainable


QV = ["q_proj", "v_proj"]
ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "fc1", "fc2"]


def _r_star_96() -> int:
    return next(r for r in range(1, 97) if count_parameters(LoRALinear(nn.Linear(96, 96), r, r)).trainable == 96 * 96)


def _adamw_bytes_per_param_full() -> float:
    model = _base()
    rep = account_training_step(model, make_batch("rotate", 4, torch.Generator().manual_seed(0)))
    return (rep.weights + rep.gradients + rep.optimizer) / count_parameters(model).total


def _grad_and_adam_bytes_qv_r4() -> int:
    rep = account_training_step(_lora(QV, 4), make_batch("rotate", 4, torch.Generator().manual_seed(0)))
    return rep.gradients + rep.optimizer


def _nf4_bytes_per_weight() -> float:
    report = quantize_base(_base(), "nf4")
    return report.stored_bytes / (report.float32_bytes / 4)
