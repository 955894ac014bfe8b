"""Numeric quiz answers of notebooks 00-03, recomputed from lora_mini (see tests/test_quiz.py)."""
from quizchecks_common import *  # noqa: F401,F403 - the shared helpers and lora_mini names
from quizchecks_common import _adamw_bytes_per_param_full, _base, _base_params_changed_after_lora, _grad_and_adam_bytes_qv_r4, _lora, _lora_numbers, _max_rank_delta_r4, _nf4_bytes_per_weight, _phi_self, _r_star_96, _scaling_r4_a8  # noqa: F401

CHECKS = {
    # 00 why LoRA: the scale-up, counted with real LoRALinear layers on the meta device
    "gpt3_qv_r4": lambda: 96 * 2 * _lora_numbers(12288, 12288, 4),
    "gpt2_qv_r4": lambda: 12 * 2 * _lora_numbers(768, 768, 4),
    "ratio_4096_r16": lambda: 4096 * 4096 / _lora_numbers(4096, 4096, 16),
    # 01 the toy transformer
    "base_total_params": lambda: count_parameters(_base()).total,
    "vocab_size": lambda: _base().config.vocab_size,
    "q_proj_params": lambda: sum(p.numel() for p in _base().blocks[0].attn.q_proj.parameters()),
    # 02 LoRA from scratch
    "scaling_r4_a8": _scaling_r4_a8,
    "fc1_r2_params": lambda: count_parameters(LoRALinear(_base().blocks[0].mlp.fc1, r=2, alpha=4)).trainable,
    # 03 counting
    "trainable_qv_r4": lambda: count_parameters(_lora(QV, 4, alpha=8)).trainable,
    "trainable_percent_qv_r4": lambda: count_parameters(_lora(QV, 4, alpha=8)).percent,
    "trainable_all_r8": lambda: count_parameters(_lora(ALL_LINEAR, 8)).trainable,
    "adapter_bytes_qv_r4": lambda: sum(t.numel() * t.element_size() for t in lora_state_dict(_lora(QV, 4)).values()),
    "r_star_96": _r_star_96,
    "adamw_bytes_per_param_full": _adamw_bytes_per_param_full,
}
