"""LoRA: freeze a pretrained weight W and learn a low-rank update ΔW = (alpha / r) · B · A.

For a frozen ``nn.Linear`` with weight W (out, in), LoRA adds two small trainable matrices,
A (r, in) and B (out, r), and computes h = W x + (alpha / r) · B (A x). B starts at zero, so at
step 0 the adapted model is exactly the base model; only r · (in + out) numbers train.

Read :class:`LoraConfig` and :class:`LoRALinear` first: they are all of plain LoRA. The variants are
options of the config, named as in PEFT: ``use_rslora`` (scaling alpha / sqrt(r)), ``use_dora``
(:class:`DoRALinear`) and ``init_lora_weights="pissa"``; their math is in :mod:`lora_mini.variants`.
A quantised base (:class:`~lora_mini.quant.QuantLinear`, toy QLoRA) is wrapped like a Linear: its
``weight`` is W dequantised, so ``base.weight`` below always means the frozen W as floats.
Guards and their long messages live in :mod:`lora_mini.checks`; files in :mod:`lora_mini.adapters`.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import torch
import torch.nn as nn

from . import checks, variants
from .errors import LoraTypeError
from .quant import QuantLinear

LORA_PARAMETERS = ("lora_A", "lora_B", "lora_magnitude_vector")  # what trains; the last only with DoRA


@dataclass(frozen=True)
class LoraConfig:
    """One adapter's settings, in PEFT's names (PEFT calls ``alpha`` ``lora_alpha``); checked when made.

    Two adapters fit each other (one file loads into the other's layers) exactly when their configs are
    equal. Dropout is left out of that comparison: it acts only in training and changes no weight.
    """

    r: int
    alpha: float
    dropout: float = field(default=0.0, compare=False)
    use_rslora: bool = False
    use_dora: bool = False
    init_lora_weights: bool | str = True  # True: A random, B zero; "pissa": A, B from the SVD of W (inject_lora)

    def __post_init__(self) -> None:
        checks.lora_config(self)

    @property
    def scaling(self) -> float:
        return self.alpha / math.sqrt(self.r) if self.use_rslora else self.alpha / self.r  # rsLoRA: alpha / sqrt(r)

    def __str__(self) -> str:
        """'r=4, alpha=8', plus each variant option that is not its default."""
        options = {"use_rslora": (self.use_rslora, False), "use_dora": (self.use_dora, False),
                   "init_lora_weights": (self.init_lora_weights, True)}
        changed = [f"{k}={v!r}" for k, (v, default) in options.items() if v != default]
        return ", ".join([f"r={self.r!r}, alpha={self.alpha!r}", *changed])


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank update: y = base(x) + scaling · B A x."""

    use_dora = False  # variants.DoRA (in DoRALinear) says True

    def __init__(self, base: nn.Linear | QuantLinear, r: int, alpha: float, dropout: float = 0.0,
                 use_rslora: bool = False) -> None:
        super().__init__()
        if not isinstance(base, (nn.Linear, QuantLinear)):
            raise LoraTypeError(f"LoRALinear wraps an nn.Linear (or a QuantLinear), got {type(base).__name__}")
        self.config = LoraConfig(r, alpha, dropout, use_rslora, self.use_dora)  # variants.pissa_init may change it
        d_in, d_out = base.in_features, base.out_features
        checks.new_numbers(r * (d_in + d_out), f"r={r} on a {d_in}->{d_out} layer")
        self.base = base.requires_grad_(False)  # W (and bias) frozen
        self.r, self.alpha, self.scaling = r, alpha, self.config.scaling  # read from the config, for short
        w = base.weight  # (out, in): for the device and dtype of A and B
        self.lora_A = nn.Parameter(torch.empty(r, d_in, device=w.device, dtype=w.dtype))  # (r, in)
        self.lora_B = nn.Parameter(torch.empty(d_out, r, device=w.device, dtype=w.dtype))  # (out, r)
        self.reset_parameters()
        self.lora_dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.merged = False  # merge(): ΔW lives inside base.weight
        self.disabled = False  # disable_lora(): run the pure base

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """A random (Kaiming-uniform, as nn.Linear initialises its weight), B zero: ΔW = 0."""
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., in) -> (..., out), never forming the (out, in) matrix ΔW: notebook 02's expression."""
        y = self.base(x)  # (..., out)
        if self.merged or self.disabled:
            return y
        # Bᵀ copied contiguous (r·out numbers): this term's forward + backward then ran 1.15x (out=96) to 1.46x
        # (out=384) faster on the CPU; python -m lora_mini.bench times it beside PEFT's layer
        return y + self.scaling * (self.lora_dropout(x) @ self.lora_A.T) @ self.lora_B.T.contiguous()

    def delta_weight(self) -> torch.Tensor:
        """ΔW = scaling · B @ A, shape (out, in): what merging adds to base.weight."""
        return self.scaling * (self.lora_B @ self.lora_A)  # (out, in)

    @torch.no_grad()
    def merge(self) -> None:
        """Fold ΔW into base.weight, so forward costs one matmul. Does nothing if already merged."""
        if not self.merged:
            checks.float_base(self)
            self.base.weight += self.delta_weight()
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Take ΔW back out of base.weight. Does nothing if not merged."""
        if self.merged:
            self.base.weight -= self.delta_weight()
            self.merged = False

    def extra_repr(self) -> str:
        return f"{self.config}, scaling={self.scaling:g}, merged={self.merged}"  # as print(layer) shows it


class DoRALinear(variants.DoRA, LoRALinear):
    """DoRA: y = m ⊙ (W + ΔW) x / ‖W + ΔW‖_row + b, a learned magnitude m per output row.

    LoRALinear with DoRA's parts (magnitude, forward, merge) from :class:`lora_mini.variants.DoRA`.
    """


# --- Model surgery: find Linear layers by name, wrap them, freeze everything else ---------------------------


def lora_layers(model: nn.Module) -> dict[str, LoRALinear]:
    """{qualified name: layer} of every LoRA layer of ``model``, in model order."""
    return {n: m for n, m in model.named_modules() if isinstance(m, LoRALinear)}


def replace_module(model: nn.Module, name: str, new: nn.Module) -> None:
    """Put ``new`` where the submodule called ``name`` (e.g. "blocks.0.attn.q_proj") is."""
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent), child, new)


def inject_lora(model: nn.Module, targets: str | Sequence[str], r: int, alpha: float, dropout: float = 0.0, *,
                use_rslora: bool = False, use_dora: bool = False, init_lora_weights: bool | str = True) -> list[str]:
    """Replace each targeted ``nn.Linear`` by a :class:`LoRALinear` and freeze all other parameters.

    A target matches a Linear whose qualified name equals it or ends with ``"." + target``
    (so ``"q_proj"`` hits ``blocks.0.attn.q_proj`` in every block). Layers that already carry
    LoRA with the same config are left alone. Returns the qualified names that were replaced.

    Every call leaves only LoRA trainable, as PEFT's ``get_peft_model`` does: a parameter you unfroze
    before (say ``lm_head``) is frozen again. Unfreeze it after the last ``inject_lora`` to train it too.
    ``use_dora`` builds :class:`DoRALinear` layers; after ``init_lora_weights="pissa"`` the base holds the
    residual of W, so ``disable_lora`` runs the residual. A QuantLinear target is wrapped like a Linear (QLoRA).
    Bad input raises before anything changes.
    """
    checks.model(model, "inject_lora")
    checks.not_serving(model, "inject_lora")
    checks.enabled(model, "inject_lora")  # layers added inside the block would run
    targets = checks.target_names(targets)
    config = LoraConfig(r, alpha, dropout, use_rslora, use_dora, init_lora_weights)
    names = checks.injection_plan(model, targets, config, lora_layers(model), (nn.Linear, QuantLinear))
    layers = _build_layers(model, names, config)  # everything allocated; the model still unchanged
    for name, (layer, factors) in layers.items():  # commit: nothing below can fail
        if factors is not None:
            variants.pissa_init(layer, *factors)
        replace_module(model, name, layer)
    for module in model.modules():
        for p_name, p in module.named_parameters(recurse=False):
            p.requires_grad_(isinstance(module, LoRALinear) and p_name in LORA_PARAMETERS)
    return names


def _build_layers(model: nn.Module, names: list[str], config: LoraConfig) -> dict[str, tuple]:
    """{name: (new layer, PiSSA's (A, B) or None)}, all built before any is put into ``model``."""
    bases = {name: model.get_submodule(name) for name in names}
    checks.new_numbers(sum(config.r * (b.in_features + b.out_features) for b in bases.values()),
                       f"inject_lora with r={config.r} on {len(names)} layers")
    make = DoRALinear if config.use_dora else LoRALinear

    def build(name: str, base: nn.Module) -> tuple:
        layer = make(base, config.r, config.alpha, config.dropout, config.use_rslora)
        if config.init_lora_weights != "pissa":
            return layer, None
        weight = checks.finite_weight(name, base.weight)
        return layer, variants.pissa_factors(weight, config.r, config.scaling)  # the SVDs now: they may fail

    return checks.all_or_none(bases, build, f"inject_lora(r={config.r})")  # all layers, or none and flags put back


def reset_lora(model: nn.Module) -> None:
    """Start every adapter of ``model`` afresh (A random, B zero), e.g. to train one for another task."""
    checks.model(model, "reset_lora")
    checks.not_serving(model, "reset_lora")
    layers = list(lora_layers(model).values())
    checks.unmerged(layers, "reset_lora")
    checks.no_pissa(layers, "reset_lora")
    for layer in layers:
        layer.reset_parameters()


def merge_lora(model: nn.Module) -> None:
    """Merge every LoRA layer of ``model`` into its base weight (zero added inference latency)."""
    checks.model(model, "merge_lora")
    checks.not_serving(model, "merge_lora")
    checks.enabled(model, "merge_lora")
    for name, layer in lora_layers(model).items():
        checks.float_base(layer, name)  # all checked before any layer merges
    for layer in lora_layers(model).values():
        layer.merge()


def unmerge_lora(model: nn.Module) -> None:
    """Undo :func:`merge_lora` (up to float rounding)."""
    checks.model(model, "unmerge_lora")
    checks.not_serving(model, "unmerge_lora")
    for layer in lora_layers(model).values():
        layer.unmerge()


@contextmanager
def disable_lora(model: nn.Module) -> Iterator[nn.Module]:
    """Inside ``with disable_lora(model):`` the model computes its base, adapters ignored.

    After PiSSA the base is the residual W - scaling · B A, so this runs the residual model.
    """
    checks.model(model, "disable_lora")
    checks.not_serving(model, "disable_lora")
    layers = list(lora_layers(model).values())
    checks.unmerged(layers, "disable_lora")
    was = [layer.disabled for layer in layers]  # nested blocks: the inner one puts back what it found
    depth = getattr(model, "_lora_disabled_depth", 0)  # marks the model too, so no LoRA is injected inside
    for layer in layers:
        layer.disabled = True
    model._lora_disabled_depth = depth + 1
    try:
        yield model
    finally:
        model._lora_disabled_depth = depth
        for layer, disabled in zip(layers, was):
            layer.disabled = disabled


# --- Counting -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParamCount:
    """Trainable and total parameters, printed the way PEFT prints them."""

    trainable: int
    total: int

    @property
    def percent(self) -> float:
        return 100.0 * self.trainable / self.total

    def __str__(self) -> str:
        return f"trainable params: {self.trainable:,} || all params: {self.total:,} || trainable%: {self.percent:.4f}"


def count_parameters(model: nn.Module) -> ParamCount:
    """Count the parameters of ``model`` (each shared tensor once) and those that require grad."""
    checks.model(model, "count_parameters")
    params = list(model.parameters())  # .parameters() already skips duplicates
    return ParamCount(trainable=sum(p.numel() for p in params if p.requires_grad), total=sum(p.numel() for p in params))
