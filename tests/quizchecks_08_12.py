"""Numeric quiz answers of notebooks 08-12, recomputed from lora_mini (see tests/test_quiz.py)."""
from quizchecks_common import *  # noqa: F401,F403 - the shared helpers and lora_mini names
from quizchecks_common import _base, _lora, _nf4_bytes_per_weight  # noqa: F401

from lora_mini import make_dataset


def _lora_numbers_per_scored_digit_16() -> float:
    """Trainable numbers of LoRA r = 4 on q, v per answer digit the loss scores in 16 swap_pairs examples."""
    _, targets = make_dataset("swap_pairs", 16, seed=0)  # (16, T): -100 where nothing is scored
    return count_parameters(_lora(QV, 4)).trainable / int((targets != -100).sum())


CHECKS = {
    # 08 what LoRA preserves: the capacity argument behind memorising 16 examples
    "lora_numbers_per_scored_digit_16": _lora_numbers_per_scored_digit_16,
    # 09 LoRA among its peers: the prefix length P whose trained numbers equal LoRA r=4 on q, v (3,072)
    "prefix_tokens_for_3072": lambda: 3072 // inject_peer(_base(), "prefix", 1),
    # 10 beyond LoRA: bytes per NF4 weight, absmax included
    "nf4_bytes_per_weight": _nf4_bytes_per_weight,
    # 11 to a real Hugging Face model: PEFT on the meta-device Llama-3-8B
    "llama3_8b_lora_qv_r16": lambda: __import__("lora_mini.fit", fromlist=["fit"]).peft_trainable("Llama-3-8B", 16, "q, v"),
}
