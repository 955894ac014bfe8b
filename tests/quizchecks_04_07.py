"""Numeric quiz answers of notebooks 04-07, recomputed from lora_mini (see tests/test_quiz.py)."""
import torch
import torch.nn as nn

from quizchecks_common import *  # noqa: F401,F403 - the shared helpers and lora_mini names
from quizchecks_common import _base, _grad_and_adam_bytes_qv_r4, _lora  # noqa: F401
from lora_mini.analysis import subspace_similarity


def _phi_chance_8_of_96() -> float:
    """φ(8, 8) of unrelated adapters: A matrices drawn at random, (8, 96) against (64, 96) as in notebook 06 §3."""
    g = torch.Generator().manual_seed(0)
    phis = [subspace_similarity(torch.randn(8, 96, generator=g), torch.randn(64, 96, generator=g), 8, 8) for _ in range(500)]
    return sum(phis) / len(phis)


def _unmerged_extra_macs_pct_96_r4() -> float:
    """Multiply-adds of B(Ax) per token as a percentage of Wx's, for a real LoRALinear (r = 4) on a 96x96 Linear."""
    layer = LoRALinear(nn.Linear(96, 96, device="meta"), r=4, alpha=8)
    r, n_in = layer.lora_A.shape  # (r, in)
    n_out = layer.lora_B.shape[0]  # (out, r)
    assert layer.base.weight.shape == (n_out, n_in)
    return 100 * (r * n_in + n_out * r) / (n_out * n_in)


CHECKS = {
    # 04 the face-off
    "adapters_per_full_copy": lambda: count_parameters(_base()).total // count_parameters(_lora(QV, 4)).trainable,
    "grad_and_adam_bytes_qv_r4": _grad_and_adam_bytes_qv_r4,
    # 05 choosing r, alpha, the learning rate and the targets: alpha x 4 = lr x ? with A x 2, from real runs
    "alpha_x4_lr_factor": lambda: __import__("lora_mini.tuning", fromlist=["tuning"]).equivalent_lr_factor(4, 2),
    # 06 inside the adapters: the chance level of the subspace similarity
    "phi_chance_8_of_96": _phi_chance_8_of_96,
    # 07 one base, many adapters
    "base_plus_50_adapters": lambda: count_parameters(_base()).total + 50 * count_parameters(_lora(QV, 4)).trainable,
    "unmerged_extra_macs_pct_96_r4": _unmerged_extra_macs_pct_96_r4,
}
