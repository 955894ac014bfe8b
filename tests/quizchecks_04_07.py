"""Numeric quiz answers of notebooks 04-07, recomputed from lora_mini (see tests/test_quiz.py)."""
from quizchecks_common import *  # noqa: F401,F403 - the shared helpers and lora_mini names
from quizchecks_common import _adamw_bytes_per_param_full, _base, _base_params_changed_after_lora, _grad_and_adam_bytes_qv_r4, _lora, _lora_numbers, _max_rank_delta_r4, _nf4_bytes_per_weight, _phi_self, _r_star_96, _scaling_r4_a8  # noqa: F401

CHECKS = {
    # 04 the face-off
    "base_fp32_bytes": lambda: sum(t.numel() * t.element_size() for t in _base().state_dict().values()),
    "adapters_per_full_copy": lambda: count_parameters(_base()).total // count_parameters(_lora(QV, 4)).trainable,
    "grad_and_adam_bytes_qv_r4": _grad_and_adam_bytes_qv_r4,
    # 05 choosing r, alpha, the learning rate and the targets: alpha x 4 = lr x ? with A x 2, from real runs
    "alpha_x4_lr_factor": lambda: __import__("lora_mini.tuning", fromlist=["tuning"]).equivalent_lr_factor(4, 2),
    # 06 inside the adapters
    "max_rank_delta_r4": _max_rank_delta_r4,
    "phi_self": _phi_self,
    # 07 one base, many adapters
    "base_plus_50_adapters": lambda: count_parameters(_base()).total + 50 * count_parameters(_lora(QV, 4)).trainable,
    "adapter_tensor_count": lambda: len(lora_state_dict(_lora(QV, 4))),
}
