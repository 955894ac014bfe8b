"""Numeric quiz answers of notebooks 00-03, recomputed from lora_mini (see tests/test_quiz.py)."""
from quizchecks_common import *  # noqa: F401,F403 - the shared helpers and lora_mini names
from quizchecks_common import _adamw_bytes_per_param_full, _base, _lora, _lora_numbers, _r_star_96

CHECKS = {
    # 00 why LoRA: the scale-up, counted with real LoRALinear layers on the meta device
    "gpt3_qv_r4": lambda: 96 * 2 * _lora_numbers(12288, 12288, 4),
    "ratio_4096_r16": lambda: 4096 * 4096 / _lora_numbers(4096, 4096, 16),
    # 01 the toy transformer
    "mlp_block_params": lambda: sum(p.numel() for p in _base().blocks[0].mlp.parameters()),
    # 02 LoRA from scratch
    "fc1_r2_params": lambda: count_parameters(LoRALinear(_base().blocks[0].mlp.fc1, r=2, alpha=4)).trainable,
    # 03 counting
    "trainable_all_r8": lambda: count_parameters(_lora(ALL_LINEAR, 8)).trainable,
    "r_star_96": _r_star_96,
    "adamw_bytes_per_param_full": _adamw_bytes_per_param_full,
}
