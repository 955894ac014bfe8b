"""lora_mini: LoRA from scratch on a toy transformer, for learning.

    from lora_mini import load_base, inject_lora, count_parameters, train, evaluate
    model = load_base()                                   # pretrained on copy / reverse / sort
    inject_lora(model, ["q_proj", "v_proj"], r=4, alpha=8)  # freeze W, add B·A
    print(count_parameters(model))
    train(model, "rotate", steps=300)                     # a task the base has never seen
    evaluate(model, "rotate")
"""
from .errors import AdapterFileError, LoraMiniError, LoraStateError, LoraTypeError, LoraValueError
from .exercises import check_lora_forward, check_merge, check_subspace_similarity, check_trainable_params
from .lora import (
    DoRALinear,
    LoraConfig,
    LoRALinear,
    ParamCount,
    count_parameters,
    disable_lora,
    inject_lora,
    lora_layers,
    merge_lora,
    reset_lora,
    unmerge_lora,
)
from .adapters import load_adapter, lora_state_dict, save_adapter
from .variants import loraplus_param_groups
from .memory import MemoryReport, account_peak, account_training_step, measure_peak_rss
from .model import GPTConfig, ToyGPT
from .peers import disable_peers, inject_peer, merge_peers, unload_merged, unmerge_peers
from .peft_bridge import export_peft, import_peft
from .hf import convert_adapter, from_transformers, to_transformers
from .pretrain import BASE_PATH, base_accuracy, load_base, pretrain
from .quant import NF4, QuantLinear, QuantReport, dequantize_blockwise, nf4_codebook, quantize_base, quantize_blockwise
from .quiz import Quiz, Review, load_questions, quiz_text, show_quiz, show_review, validate_questions
from .serving import mixed_adapters
from .tasks import BASE_TASKS, DOWNSTREAM_TASKS, complete, exact_match, make_batch, make_dataset
from .train import History, default_device, evaluate, step_seconds, train

__all__ = [
    # errors: one family, each also a built-in (ValueError, TypeError, RuntimeError)
    "LoraMiniError",
    "LoraValueError",
    "LoraTypeError",
    "AdapterFileError",
    "LoraStateError",
    # the model
    "GPTConfig",
    "ToyGPT",
    "load_base",
    "base_accuracy",
    "pretrain",
    "BASE_PATH",
    # the tasks
    "BASE_TASKS",
    "DOWNSTREAM_TASKS",
    "make_batch",
    "make_dataset",
    "exact_match",
    "complete",
    # LoRA
    "LoraConfig",
    "LoRALinear",
    "lora_layers",
    "inject_lora",
    "merge_lora",
    "unmerge_lora",
    "reset_lora",
    "disable_lora",
    "ParamCount",
    "count_parameters",
    "lora_state_dict",
    "save_adapter",
    "load_adapter",
    "mixed_adapters",
    # LoRA variants, as PEFT names them
    "DoRALinear",
    "loraplus_param_groups",
    # LoRA's peers: BitFit, adapters, prefix tuning, prompt tuning, (IA)³ (lora_mini.peers)
    "inject_peer",
    "disable_peers",
    "merge_peers",
    "unmerge_peers",
    "unload_merged",
    # toy QLoRA: a quantised frozen base
    "NF4",
    "nf4_codebook",
    "quantize_blockwise",
    "dequantize_blockwise",
    "QuantLinear",
    "QuantReport",
    "quantize_base",
    # the bridge to PEFT
    "export_peft",
    "import_peft",
    # the toy base as a transformers OPTForCausalLM, and back (lora_mini.hf); memory of real models: lora_mini.fit
    "to_transformers",
    "from_transformers",
    "convert_adapter",
    # training and memory
    "History",
    "train",
    "evaluate",
    "step_seconds",
    "default_device",
    "MemoryReport",
    "account_training_step",
    "account_peak",
    "measure_peak_rss",
    # self-study quizzes
    "Quiz",
    "show_quiz",
    "Review",
    "show_review",
    "quiz_text",
    "load_questions",
    "validate_questions",
    # exercise checkers
    "check_lora_forward",
    "check_trainable_params",
    "check_merge",
    "check_subspace_similarity",
]
