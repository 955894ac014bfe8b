"""Will it fit my GPU? Training memory of real architectures, from their published configs, on the meta device.

Nothing is downloaded: each model is built from its config values (written below) on PyTorch's
``meta`` device, which gives every tensor a shape and no storage. PEFT wraps the meta model as
it would the real one, so ``peft_trainable`` is PEFT's own count, checked against the course's
closed form r · (in + out) per adapted matrix (``closed_form_trainable``).

``estimate(model, setup)`` adds up the bytes of one training step under these assumptions:

- weights: every parameter at the precision's bytes (fp32 4, bf16 2). QLoRA: the Linear layers
  of the blocks in NF4, 4 bits plus 0.127 bits of double-quantised constants per weight
  (Dettmers et al. 2023, QLoRA, Section 3); embeddings, norms, LM head and adapters at the
  precision, which for QLoRA is the compute dtype (the paper's: bf16).
- gradients: one per trainable parameter, at the training precision.
- optimizer: AdamW's two moments in fp32, 8 bytes per trainable parameter. No fp32 master copy
  (16-bit weights + 16-bit gradients + fp32 Adam = 12 bytes per parameter for full fine-tuning,
  the "16-bit finetuning" that the QLoRA paper's >780 GB for 65B parameters implies).
- activations: the tensors autograd keeps for backward in each block, counted per token for a
  pre-norm decoder (fused attention, no s × s score matrix; a frozen Linear keeps no input, so
  LoRA keeps fewer), times batch × sequence × layers, plus fp32 logits for the loss. With
  gradient checkpointing only each block's input is kept, plus one block recomputed at a time.
  The same count on the toy matches the tensors ``account_training_step`` measures (tests/test_fit.py).
- not counted: the CUDA context and allocator slack (often 0.5-2 GB), temporaries of backward,
  KV caches, data; so "fits" means "the estimate fits", and a tight fit may still run out.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import torch
import torch.nn as nn

from .errors import LoraValueError
from .plots import PART_COLORS

GB = 10**9  # papers and this module count in GB (10^9 bytes)
GiB = 2**30  # GPU memory is sold in GiB: "a 24 GB card" holds 24 GiB
GPUS_GIB = (16, 24, 40, 80)
NF4_BITS = 4 + 0.127  # 4-bit codes + double-quantised constants (QLoRA, Section 3)
ADAM_BYTES = 8  # exp_avg and exp_avg_sq in fp32
PRECISION_BYTES = {"fp32": 4, "bf16": 2}
METHODS = ("full", "lora", "qlora")

# Published config values (each model's config.json on the Hugging Face Hub; GPT-3: Brown et al. 2020,
# Table 2.1; LLaMA-65B: Touvron et al. 2023, Table 2). Only what shapes the parameters is kept.
CONFIGS: dict[str, tuple[str, dict]] = {
    "GPT-2 small": ("gpt2", dict(vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12, n_head=12)),
    "Qwen2.5-0.5B": ("qwen2", dict(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                                   num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
                                   rope_theta=1000000.0, tie_word_embeddings=True)),
    "Mistral-7B": ("mistral", dict(vocab_size=32000, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                                   num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=32768,
                                   sliding_window=4096, rope_theta=10000.0, tie_word_embeddings=False)),
    "Llama-3-8B": ("llama", dict(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                                 num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=8192,
                                 rope_theta=500000.0, tie_word_embeddings=False)),
    # the two published anchors
    "LLaMA-65B": ("llama", dict(vocab_size=32000, hidden_size=8192, intermediate_size=22016, num_hidden_layers=80,
                                num_attention_heads=64, num_key_value_heads=64, max_position_embeddings=2048,
                                tie_word_embeddings=False)),
    "GPT-3 175B": ("gpt2", dict(vocab_size=50257, n_positions=2048, n_embd=12288, n_layer=96, n_head=96)),
}
MODELS = tuple(CONFIGS)
# LoRA targets by family, as PEFT's target_modules. GPT-2 fuses q, k, v in one Conv1D, c_attn.
TARGETS = {
    "gpt2": {"q, v": ["c_attn"], "attention": ["c_attn", "attn.c_proj"], "all linear": ["c_attn", "c_proj", "c_fc"]},
    "llama": {"q, v": ["q_proj", "v_proj"], "attention": ["q_proj", "k_proj", "v_proj", "o_proj"],
              "all linear": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]},
}
TARGET_CHOICES = tuple(TARGETS["llama"])


def _family(model_type: str) -> str:
    return "gpt2" if model_type == "gpt2" else "llama"  # qwen2 and mistral are Llama-shaped


@dataclass(frozen=True)
class Shape:
    """What the memory of a decoder depends on, read from its config."""

    family: str  # "gpt2" (GELU MLP: fc, proj) or "llama" (SwiGLU MLP: gate, up, down)
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    vocab: int

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    def linears(self) -> dict[str, tuple[int, int]]:
        """(in, out) of every Linear in one block, by the name PEFT matches."""
        h, i, q, kv = self.hidden, self.intermediate, self.heads * self.head_dim, self.kv_heads * self.head_dim
        if self.family == "gpt2":
            return {"c_attn": (h, 3 * h), "attn.c_proj": (h, h), "c_fc": (h, i), "mlp.c_proj": (i, h)}
        return {"q_proj": (h, q), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (q, h),
                "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}


def shape(name: str) -> Shape:
    """The Shape of one of MODELS, from its config values."""
    model_type, c = _config_values(name)
    if model_type == "gpt2":
        return Shape("gpt2", c["n_embd"], 4 * c["n_embd"], c["n_layer"], c["n_head"], c["n_head"], c["vocab_size"])
    return Shape("llama", c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"], c["num_attention_heads"],
                 c["num_key_value_heads"], c["vocab_size"])


def _config_values(name: str) -> tuple[str, dict]:
    if name not in CONFIGS:
        raise LoraValueError(f"model must be one of {list(CONFIGS)}, got {name!r}")
    return CONFIGS[name]


def target_modules(name: str, targets: str) -> list[str]:
    """PEFT's target_modules for a target choice ("q, v", "attention", "all linear") on this model."""
    if targets not in TARGET_CHOICES:
        raise LoraValueError(f"targets must be one of {list(TARGET_CHOICES)}, got {targets!r}")
    return TARGETS[_family(_config_values(name)[0])][targets]


def _adapted(name: str, targets: str) -> list[str]:
    """The Linear names of one block that the target choice adapts (PEFT's rule: equal, or ends with "." + t)."""
    wanted = target_modules(name, targets)
    return [n for n in shape(name).linears() if any(n == t or n.endswith("." + t) for t in wanted)]


# ---------------------------------------------------------------------------
# Parameters: the meta model, PEFT's count, and the closed form
# ---------------------------------------------------------------------------


@lru_cache(maxsize=None)
def meta_model(name: str) -> nn.Module:
    """The model built from its config on the meta device: every shape, no memory, nothing downloaded."""
    from transformers import AutoConfig, AutoModelForCausalLM

    model_type, values = _config_values(name)
    config = AutoConfig.for_model(model_type, **values)
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config)


@lru_cache(maxsize=None)
def param_counts(name: str) -> tuple[int, int]:
    """(all parameters, those in the blocks' Linear layers) of the meta model; tied weights count once."""
    model = meta_model(name)
    total = sum(p.numel() for p in model.parameters())
    blocks = model.get_decoder().layers if hasattr(model.get_decoder(), "layers") else model.transformer.h
    linear = sum(m.weight.numel() for m in blocks.modules() if isinstance(m, nn.Linear) or type(m).__name__ == "Conv1D")
    return total, linear


def _check_r(r: object) -> None:
    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
        raise LoraValueError(f"r must be a positive integer (the rank, e.g. r=16), got {r!r}")


def peft_trainable(name: str, r: int, targets: str) -> int:
    """Trainable parameters PEFT reports for LoRA(r, targets) on the meta model (the model is not changed)."""
    import copy

    from peft import LoraConfig, get_peft_model

    _check_r(r)
    config = LoraConfig(r=r, lora_alpha=2 * r, target_modules=target_modules(name, targets), lora_dropout=0.0,
                        fan_in_fan_out=_family(_config_values(name)[0]) == "gpt2")
    with torch.device("meta"):
        peft_model = get_peft_model(copy.deepcopy(meta_model(name)), config)
    return peft_model.get_nb_trainable_parameters()[0]


def closed_form_trainable(name: str, r: int, targets: str) -> int:
    """The course's closed form: r · (in + out) for each adapted matrix, in every block."""
    _check_r(r)
    s = shape(name)
    return s.layers * sum(r * (d_in + d_out) for n, (d_in, d_out) in s.linears().items() if n in _adapted(name, targets))


# ---------------------------------------------------------------------------
# The estimate
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    """One way to train: method, LoRA rank and targets, precision, batch, sequence, checkpointing."""

    method: str = "lora"  # "full", "lora" or "qlora"
    r: int = 16
    targets: str = "q, v"  # one of TARGET_CHOICES
    precision: str = "bf16"  # "fp32" or "bf16"
    batch: int = 1
    seq: int = 512
    checkpointing: bool = False

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise LoraValueError(f"method must be one of {list(METHODS)}, got {self.method!r}")
        if self.precision not in PRECISION_BYTES:
            raise LoraValueError(f"precision must be one of {list(PRECISION_BYTES)}, got {self.precision!r}")
        _check_r(self.r)
        if self.targets not in TARGET_CHOICES:
            raise LoraValueError(f"targets must be one of {list(TARGET_CHOICES)}, got {self.targets!r}")
        for key in ("batch", "seq"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise LoraValueError(f"{key} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class Estimate:
    """Bytes of one training step, by kind."""

    weights: int
    gradients: int
    optimizer: int
    activations: int
    trainable: int = 0
    notes: tuple[str, ...] = field(default=())

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer + self.activations

    def parts(self) -> dict[str, int]:
        return {"weights": self.weights, "gradients": self.gradients, "optimizer": self.optimizer,
                "activations": self.activations}

    def fits(self) -> list[int]:
        """The GPU sizes of GPUS_GIB (in GiB) that hold the estimate."""
        return [g for g in GPUS_GIB if self.total <= g * GiB]


def activation_elements(s: Shape, trains: set[str], r: int = 0, head_trains: bool = False) -> tuple[int, int]:
    """(per token per block, per token after the blocks): elements autograd keeps for backward.

    ``trains``: the Linear names of a block whose weight (full) or adapter (LoRA, rank ``r``) trains;
    a frozen Linear keeps nothing of its input. Fused attention keeps q, k, v and its output.
    """
    h, i, q, kv = s.hidden, s.intermediate, s.heads * s.head_dim, s.kv_heads * s.head_dim
    if s.family == "llama":
        attn_in, mlp_in, mlp_last, mlp_kept = ("q_proj", "k_proj", "v_proj"), ("gate_proj", "up_proj"), "down_proj", 3 * i
    else:
        attn_in, mlp_in, mlp_last, mlp_kept = ("c_attn",), ("c_fc",), "mlp.c_proj", i
    per = h + q + 2 * kv + q + h  # norm 1 input, q, k, v, attention output (also o_proj's input), norm 2 input
    per += h * any(n in trains for n in attn_in)  # norm 1 output, the input of trained q/k/v
    per += h * any(n in trains for n in mlp_in)  # norm 2 output, the input of a trained fc / gate / up
    per += mlp_kept  # gate, up, silu(gate) | fc output (the GELU's input)
    per += i * (mlp_last in trains)  # the input of the MLP's last Linear (product | GELU output), if it trains
    per += r * len(trains)  # LoRA: A x, r numbers per adapted Linear
    return per, h + h * head_trains  # final norm input, and its output if the LM head trains


def estimate(name: str, setup: Setup = Setup()) -> Estimate:
    """Bytes of one training step of model ``name`` under ``setup`` (the assumptions are in this module's doc)."""
    s = shape(name)
    total, linear = param_counts(name)
    p = PRECISION_BYTES[setup.precision]  # QLoRA: the compute dtype (bnb_4bit_compute_dtype)
    if setup.method == "full":
        trainable = total
        weights = total * p
        trains, r = set(s.linears()), 0
    else:
        trainable = closed_form_trainable(name, setup.r, setup.targets)
        frozen = linear * NF4_BITS / 8 + (total - linear) * p if setup.method == "qlora" else total * p
        weights = int(frozen) + trainable * p
        trains, r = set(_adapted(name, setup.targets)), setup.r
    per_block, after = activation_elements(s, trains, r, head_trains=setup.method == "full")
    tokens = setup.batch * setup.seq
    if setup.checkpointing:  # each block's input kept, one block's activations alive while it is recomputed
        kept = tokens * (s.layers * s.hidden + per_block)
    else:
        kept = tokens * s.layers * per_block
    activations = (kept + tokens * after) * p + tokens * s.vocab * 4  # + fp32 logits for the loss
    return Estimate(weights=weights, gradients=trainable * p, optimizer=trainable * ADAM_BYTES,
                    activations=activations, trainable=trainable)


def plot_estimate(estimates: dict[str, Estimate], ax=None):
    """Stacked horizontal bars, one per estimate, in GB, with the GPU sizes as dashed lines."""
    import matplotlib.pyplot as plt

    ax = ax or plt.gca()
    labels = list(estimates)
    left = [0.0] * len(labels)
    for part in ("weights", "gradients", "optimizer", "activations"):
        widths = [e.parts()[part] / GB for e in estimates.values()]
        ax.barh(labels, widths, left=left, color=PART_COLORS[part], label=part, edgecolor="white")
        left = [a + b for a, b in zip(left, widths)]
    top = max(max(left), 80 * GiB / GB) * 1.05
    for g in GPUS_GIB:
        ax.axvline(g * GiB / GB, color="#999999", ls="--", lw=1)
        ax.text(g * GiB / GB, len(labels) - 0.5 + 0.55, f"{g} GB GPU", rotation=90, va="top", ha="right", fontsize=7)
    ax.set_xlim(0, top)
    ax.set_ylim(-0.5, len(labels) - 0.5 + 0.6)  # headroom above the top bar for the GPU labels
    ax.set_xlabel("memory of one training step (GB, 10^9 bytes)")
    ax.set_ylabel("setting")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return ax
