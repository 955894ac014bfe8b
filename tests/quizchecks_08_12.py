"""Numeric quiz answers of notebooks 08-12, recomputed from lora_mini (see tests/test_quiz.py)."""
from quizchecks_common import *  # noqa: F401,F403 - the shared helpers and lora_mini names
from quizchecks_common import _adamw_bytes_per_param_full, _base, _base_params_changed_after_lora, _grad_and_adam_bytes_qv_r4, _lora, _lora_numbers, _max_rank_delta_r4, _nf4_bytes_per_weight, _phi_self, _r_star_96, _scaling_r4_a8  # noqa: F401

CHECKS = {
    # 08 what LoRA preserves
    "base_params_changed_after_lora": _base_params_changed_after_lora,
    "base_sort_accuracy_percent": lambda: 100 * base_accuracy()["sort"],
    # 09 LoRA among its peers: the prefix length P whose trained numbers equal LoRA r=4 on q, v (3,072)
    "prefix_tokens_for_3072": lambda: 3072 // inject_peer(_base(), "prefix", 1),
    # 10 beyond LoRA
    "loraplus_b_lr": lambda: loraplus_param_groups(_lora(QV, 4), lr=2e-4)[1]["lr"],
    "nf4_bytes_per_weight": _nf4_bytes_per_weight,
    # 11 to a real Hugging Face model: PEFT on the meta-device Llama-3-8B
    "llama3_8b_lora_qv_r16": lambda: __import__("lora_mini.fit", fromlist=["fit"]).peft_trainable("Llama-3-8B", 16, "q, v"),
}
