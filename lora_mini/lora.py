"""LoRA: freeze a pretrained weight W and learn a low-rank update ΔW = (alpha / r) · B · A.

For a frozen ``nn.Linear`` with weight W of shape (out, in), LoRA adds two small
trainable matrices, A of shape (r, in) and B of shape (out, r), and computes

    h = W x + (alpha / r) · B (A x)

B starts at zero, so at step 0 the adapted model is exactly the base model.
Only A and B train: r · (in + out) numbers instead of in · out.

Read :class:`LoRALinear` first: it is all of plain LoRA. The variants come after it,
each an option of :func:`inject_lora` named as in PEFT's ``LoraConfig``:

    use_rslora=True            scaling alpha / sqrt(r) instead of alpha / r (rsLoRA)
    use_dora=True              a learned magnitude per output row (DoRA, :class:`DoRALinear`)
    init_lora_weights="pissa"  A, B from the top-r SVD of W, the base keeps the rest (PiSSA)

and :func:`loraplus_param_groups` gives B a larger learning rate than A (LoRA+).
LoRA also wraps a quantised base (:class:`~lora_mini.quant.QuantLinear`, toy QLoRA).
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from . import checks
from .errors import AdapterFileError, LoraTypeError, LoraValueError
from .quant import QuantLinear

LORA_PARAMETERS = ("lora_A", "lora_B", "lora_magnitude_vector")  # what trains; the last only with DoRA


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank update: y = base(x) + scaling · B A x."""

    def __init__(
        self, base: nn.Linear | QuantLinear, r: int, alpha: float, dropout: float = 0.0, use_rslora: bool = False
    ) -> None:
        super().__init__()
        if not isinstance(base, (nn.Linear, QuantLinear)):
            raise LoraTypeError(f"LoRALinear wraps an nn.Linear (or a QuantLinear), got {type(base).__name__}")
        checks.hparams(r, alpha, dropout)
        checks.flag("use_rslora", use_rslora)
        checks.new_numbers(r * (base.in_features + base.out_features), f"r={r} on a {base.in_features}->{base.out_features} layer")
        self.base = base
        self.base.requires_grad_(False)
        self.r, self.alpha, self.use_rslora = r, alpha, use_rslora
        self.scaling = alpha / math.sqrt(r) if use_rslora else alpha / r  # rsLoRA: alpha / sqrt(r)
        self.init_lora_weights: bool | str = True  # "pissa" after pissa_init()
        w = self.base_weight()
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, device=w.device, dtype=w.dtype))
        self.lora_B = nn.Parameter(torch.empty(base.out_features, r, device=w.device, dtype=w.dtype))
        self.reset_parameters()
        self.lora_dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.merged = False
        self.disabled = False  # set by disable_lora(): run the pure base

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """A random (Kaiming-uniform, as nn.Linear initialises its weight), B zero: ΔW = 0."""
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., in) -> (..., out), never forming the (out, in) matrix ΔW."""
        y = self.base(x)  # (..., out)
        if self.merged or self.disabled:
            return y  # merged: ΔW already lives inside base.weight
        a = self.scaling * F.linear(self.lora_dropout(x), self.lora_A)  # (..., r): scale the small tensor
        # Bᵀ as a contiguous (r, out) matrix: both of backward's products with B then run in BLAS's fast
        # layout (a tall, thin (out, r) result is several times slower on the CPU); the copy is r·out numbers.
        return y + a @ self.lora_B.t().contiguous()  # (..., out)

    def delta_weight(self) -> torch.Tensor:
        """ΔW = scaling · B @ A, shape (out, in): what merging adds to base.weight."""
        return self.scaling * (self.lora_B @ self.lora_A)  # (out, in)

    def base_weight(self) -> torch.Tensor:
        """The frozen W, shape (out, in); dequantised to float32 when the base is a QuantLinear."""
        return self.base.dequantize() if isinstance(self.base, QuantLinear) else self.base.weight

    @torch.no_grad()
    def merge(self) -> None:
        """Fold ΔW into base.weight, so forward costs one matmul. Does nothing if already merged."""
        if not self.merged:
            _check_float_base(self)
            self.base.weight += self.delta_weight()
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Take ΔW back out of base.weight. Does nothing if not merged."""
        if self.merged:
            self.base.weight -= self.delta_weight()
            self.merged = False

    @torch.no_grad()
    def pissa_init(self, factors: tuple[torch.Tensor, torch.Tensor] | None = None) -> None:
        """PiSSA: B·A takes the top-r singular part of W and the base keeps the residual, output unchanged.

        ``factors`` are (A, B) from :func:`pissa_factors`, when already computed (inject_lora does).
        """
        A, B = factors if factors is not None else pissa_factors(self.base.weight, self.r, self.scaling)
        self.lora_A.copy_(A)  # (r, in)
        self.lora_B.copy_(B)  # (out, r)
        self.base.weight -= self.delta_weight()  # the residual: W - U_r S_r V_rᵀ
        self.init_lora_weights = "pissa"

    def extra_repr(self) -> str:
        extra = ", use_rslora=True" if self.use_rslora else ""
        extra += ", init_lora_weights='pissa'" if self.init_lora_weights == "pissa" else ""
        return f"r={self.r}, alpha={self.alpha}, scaling={self.scaling:g}{extra}, merged={self.merged}"


@torch.no_grad()
def pissa_factors(weight: torch.Tensor, r: int, scaling: float) -> tuple[torch.Tensor, torch.Tensor]:
    """PiSSA's (A (r, in), B (out, r)) for W (out, in): scaling · B A = U_r S_r V_rᵀ, the top-r part of W.

    With W = U S Vᵀ: A = sqrt(S_r / scaling) V_rᵀ and B = U_r sqrt(S_r / scaling) (as PEFT does).
    """
    U, S, Vh = torch.linalg.svd(weight.float(), full_matrices=False)  # (out, k), (k,), (k, in)
    root = (S[:r] / scaling).sqrt()  # (r,)
    return root[:, None] * Vh[:r], U[:, :r] * root  # (r, in), (out, r)


class DoRALinear(LoRALinear):
    """DoRA: a learned magnitude m per output row times the unit-norm direction of W + ΔW.

        y = m ⊙ (W + ΔW) x / ‖W + ΔW‖_row + b,   ΔW = scaling · B A

    ‖·‖_row is the norm of each output row of the (out, in) matrix (the paper's column norm
    of Wᵀ) and, as in the paper (section 4.3) and PEFT, a constant in backward.
    m starts at ‖W‖_row, so with B = 0 the layer starts as its base.
    """

    def __init__(
        self, base: nn.Linear | QuantLinear, r: int, alpha: float, dropout: float = 0.0, use_rslora: bool = False
    ) -> None:
        super().__init__(base, r, alpha, dropout, use_rslora)
        self.lora_magnitude_vector = nn.Parameter(self.weight_norm())  # (out,) m = ‖W‖_row: output unchanged

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """A random, B zero, m = ‖W‖_row: the layer again computes its base."""
        super().reset_parameters()
        if hasattr(self, "lora_magnitude_vector"):  # not yet there when LoRALinear.__init__ calls this
            self.lora_magnitude_vector.copy_(self.weight_norm())

    def weight_norm(self) -> torch.Tensor:
        """‖W + ΔW‖ of each output row, shape (out,), computed without gradient; at least 1e-12, so that an
        all-zero row (direction undefined) gets scale m / 1e-12 times a zero row: zero, never 0 / 0."""
        with torch.no_grad():
            return torch.linalg.norm(self.base_weight() + self.delta_weight(), dim=1).clamp_min(1e-12)  # (out,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., in) -> (..., out): base(x) plus the change from rescaling each row to length m."""
        y = self.base(x)  # (..., out) = W x + b
        if self.merged or self.disabled:
            return y
        if self.training and isinstance(self.lora_dropout, nn.Dropout):
            x = self.lora_dropout(x)  # (..., in); as in PEFT, dropout feeds the whole DoRA term
            wx = F.linear(x, self.base_weight().to(x.dtype))  # (..., out) W x, no bias
        else:
            wx = y if self.base.bias is None else y - self.base.bias  # (..., out) W x, from the base's output
        scale = self.lora_magnitude_vector / self.weight_norm()  # (out,) m / ‖W + ΔW‖_row
        bax = self.scaling * F.linear(F.linear(x, self.lora_A), self.lora_B)  # (..., out) ΔW x
        return y + ((scale - 1) * wx + scale * bax)  # = scale ⊙ (W + ΔW) x + b without dropout

    @torch.no_grad()
    def merge(self) -> None:
        """W ← (m / ‖W + ΔW‖_row) ⊙ (W + ΔW), row by row. Does nothing if already merged."""
        if not self.merged:
            _check_float_base(self)
            self._unmerged_weight = self.base.weight.clone()  # (out, in): unmerge restores it exactly
            scale = self.lora_magnitude_vector / self.weight_norm()  # (out,) m / ‖W + ΔW‖_row
            self.base.weight.copy_(scale[:, None] * (self.base.weight + self.delta_weight()))
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """W ← the weight kept by merge (dividing by the scale would fail where m = 0). Does nothing if not merged."""
        if self.merged:
            self.base.weight.copy_(self._unmerged_weight)
            del self._unmerged_weight
            self.merged = False


# ---------------------------------------------------------------------------
# Model surgery: find Linear layers by name, wrap them, freeze everything else.
# ---------------------------------------------------------------------------


def _check_float_base(layer: LoRALinear, name: str = "this layer") -> None:
    if isinstance(layer.base, QuantLinear):
        raise LoraValueError(
            f"{name} wraps a quantised QuantLinear: merging would re-quantise W + ΔW and lose the adapter's "
            "precision; keep the adapter unmerged (QLoRA serves it that way), or inject into a float base to merge"
        )


def _check_variants(use_rslora: object, use_dora: object, init_lora_weights: object) -> None:
    checks.flag("use_rslora", use_rslora)
    checks.flag("use_dora", use_dora)
    if init_lora_weights is not True and not (isinstance(init_lora_weights, str) and init_lora_weights == "pissa"):
        raise LoraValueError(
            "init_lora_weights must be True (A random, B zero) or 'pissa' (A and B from the SVD of W), "
            f"got {init_lora_weights!r}"
        )


def _matches(name: str, target: str) -> bool:
    return name == target or name.endswith("." + target)


def _lora_layers(model: nn.Module) -> dict[str, LoRALinear]:
    return {n: m for n, m in model.named_modules() if isinstance(m, LoRALinear)}


def _settings(layer: LoRALinear) -> dict[str, object]:
    """What inject_lora was called with for this layer (dropout aside), in PEFT's words."""
    return {
        "r": layer.r,
        "alpha": layer.alpha,
        "use_rslora": layer.use_rslora,
        "use_dora": isinstance(layer, DoRALinear),
        "init_lora_weights": layer.init_lora_weights,
    }


def _describe(settings: dict[str, object]) -> str:
    """'r=4, alpha=8', plus each variant option that is not its default."""
    defaults = {"use_rslora": False, "use_dora": False, "init_lora_weights": True}
    return ", ".join(f"{k}={v!r}" for k, v in settings.items() if k not in defaults or v != defaults[k])


def _check_pissa(name: str, module: nn.Module, r: int) -> None:
    if isinstance(module, QuantLinear):
        raise LoraValueError(
            f"init_lora_weights='pissa' rewrites the base weight of {name} as a residual, which a quantised "
            "QuantLinear cannot hold exactly; PiSSA needs a float base (load_base() without quantize_base)"
        )
    if r > min(module.in_features, module.out_features):
        raise LoraValueError(
            f"init_lora_weights='pissa' takes the top r singular vectors, but {name} has only "
            f"{min(module.in_features, module.out_features)}; use r <= {min(module.in_features, module.out_features)}"
        )


def _plan_injection(model: nn.Module, targets: Sequence[str], settings: dict[str, object]) -> list[str]:
    """Check every target against the model and return the names to wrap; raise before any change."""
    inner = {id(layer.base) for layer in _lora_layers(model).values()}  # Linears already wrapped
    modules = [(n, m) for n, m in model.named_modules() if id(m) not in inner]
    wrappable = (nn.Linear, QuantLinear)
    linears = [n for n, m in modules if isinstance(m, (*wrappable, LoRALinear))]
    to_wrap: set[str] = set()
    for target in targets:
        found = [(n, m) for n, m in modules if _matches(n, target)]
        if not found:
            raise LoraValueError(
                f"target {target!r} matches no module. Targets are names of nn.Linear layers, "
                f"matched exactly or by their last parts; available: {linears}"
            )
        for name, module in found:
            if isinstance(module, LoRALinear) and _settings(module) != settings:
                raise LoraValueError(
                    f"{name} already has LoRA with {_describe(_settings(module))}; "
                    f"to use {_describe(settings)}, start again from a fresh base (load_base())"
                )
            if not isinstance(module, (*wrappable, LoRALinear)):
                raise LoraTypeError(
                    f"target {target!r} matches {name}, a {type(module).__name__}, not an nn.Linear; "
                    f"name Linear layers instead, e.g. one of {linears[:6]}"
                )
            if isinstance(module, wrappable):
                if settings["init_lora_weights"] == "pissa":
                    _check_pissa(name, module, settings["r"])
                to_wrap.add(name)
    return [n for n in linears if n in to_wrap]  # in model order


def inject_lora(
    model: nn.Module,
    targets: str | Sequence[str],
    r: int,
    alpha: float,
    dropout: float = 0.0,
    *,
    use_rslora: bool = False,
    use_dora: bool = False,
    init_lora_weights: bool | str = True,
) -> list[str]:
    """Replace each targeted ``nn.Linear`` by a :class:`LoRALinear` and freeze all other parameters.

    A target matches a Linear whose qualified name equals it or ends with ``"." + target``
    (so ``"q_proj"`` hits ``blocks.0.attn.q_proj`` in every block). Layers that already
    carry LoRA are left alone. Returns the qualified names that were replaced.

    Variants (PEFT's names): ``use_rslora`` scales by alpha / sqrt(r); ``use_dora`` builds
    :class:`DoRALinear` layers; ``init_lora_weights="pissa"`` starts A, B from the SVD of W and
    leaves the residual in the base, so ``disable_lora`` then runs the residual, not the original.
    A QuantLinear target (see ``quantize_base``) is wrapped like a Linear (QLoRA).
    """
    checks.model(model, "inject_lora")
    checks.not_serving(model, "inject_lora")
    checks.enabled(model, "inject_lora")  # layers added inside the block would run
    targets = [targets] if isinstance(targets, str) else targets
    if not isinstance(targets, (list, tuple)) or not targets or not all(isinstance(t, str) for t in targets):
        raise LoraTypeError(f"targets must be a list of layer names such as ['q_proj', 'v_proj'], got {targets!r}")
    checks.hparams(r, alpha, dropout)
    _check_variants(use_rslora, use_dora, init_lora_weights)
    settings = dict(r=r, alpha=alpha, use_rslora=use_rslora, use_dora=use_dora, init_lora_weights=init_lora_weights)
    names = _plan_injection(model, targets, settings)  # raises before anything changes
    layers = _build_layers(model, names, DoRALinear if use_dora else LoRALinear, r, alpha, dropout, use_rslora,
                           pissa=init_lora_weights == "pissa")  # everything allocated; the model still unchanged
    for name, layer in layers.items():  # commit: nothing below can fail
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child, layer)
    for module in model.modules():
        for p_name, p in module.named_parameters(recurse=False):
            p.requires_grad_(isinstance(module, LoRALinear) and p_name in LORA_PARAMETERS)
    return names


def _build_layers(model: nn.Module, names: list[str], layer_class: type, r: int, alpha: float, dropout: float,
                  use_rslora: bool, pissa: bool) -> dict[str, LoRALinear]:
    """The new LoRA layers, all allocated (and PiSSA's SVDs done) before any is put into ``model``.

    Building a layer freezes its base, so on any failure the bases' requires_grad flags are put back.
    """
    checks.new_numbers(sum(r * (model.get_submodule(n).in_features + model.get_submodule(n).out_features)
                           for n in names), f"inject_lora with r={r} on {len(names)} layers")
    frozen = {p: p.requires_grad for n in names for p in model.get_submodule(n).parameters()}
    layers = {}
    try:
        for name in names:
            base = model.get_submodule(name)
            layer = layer_class(base, r, alpha, dropout, use_rslora)
            if pissa:
                if not bool(torch.isfinite(base.weight).all()):
                    raise LoraValueError(f"the weight of {name} holds NaN or inf; PiSSA's SVD needs a finite W")
                layers[name] = (layer, pissa_factors(base.weight, r, layer.scaling))
            else:
                layers[name] = (layer, None)
    except BaseException as e:
        for p, flag in frozen.items():
            p.requires_grad_(flag)
        if isinstance(e, (RuntimeError, MemoryError)):  # the allocator, or the SVD
            raise LoraValueError(f"inject_lora(r={r}) could not build its layers ({type(e).__name__}: {e})") from e
        raise
    for layer, factors in layers.values():
        if factors is not None:
            layer.pissa_init(factors)
    return {name: layer for name, (layer, _) in layers.items()}


def reset_lora(model: nn.Module) -> None:
    """Start every adapter of ``model`` afresh (A random, B zero), e.g. to train one for another task."""
    checks.model(model, "reset_lora")
    checks.not_serving(model, "reset_lora")
    checks.unmerged(list(_lora_layers(model).values()), "reset_lora")
    for layer in _lora_layers(model).values():
        if layer.init_lora_weights == "pissa":
            raise LoraValueError(
                "reset_lora cannot restart PiSSA layers: their base weight is now the residual of the SVD; "
                "start again from a fresh base (load_base()) and inject_lora(..., init_lora_weights='pissa')"
            )
    for layer in _lora_layers(model).values():
        layer.reset_parameters()


def merge_lora(model: nn.Module) -> None:
    """Merge every LoRA layer of ``model`` into its base weight (zero added inference latency)."""
    checks.model(model, "merge_lora")
    checks.not_serving(model, "merge_lora")
    checks.enabled(model, "merge_lora")
    for name, layer in _lora_layers(model).items():
        _check_float_base(layer, name)  # all checked before any layer merges
    for layer in _lora_layers(model).values():
        layer.merge()


def unmerge_lora(model: nn.Module) -> None:
    """Undo :func:`merge_lora` (up to float rounding)."""
    checks.model(model, "unmerge_lora")
    checks.not_serving(model, "unmerge_lora")
    for layer in _lora_layers(model).values():
        layer.unmerge()


@contextmanager
def disable_lora(model: nn.Module) -> Iterator[nn.Module]:
    """Inside ``with disable_lora(model):`` the model computes its base, adapters ignored.

    After PiSSA (``init_lora_weights="pissa"``) the base is the residual W - scaling · B A,
    so this runs the residual model, not the original one.
    """
    checks.model(model, "disable_lora")
    checks.not_serving(model, "disable_lora")
    layers = list(_lora_layers(model).values())
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


# ---------------------------------------------------------------------------
# Counting, and LoRA+'s two learning rates
# ---------------------------------------------------------------------------


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
    return ParamCount(
        trainable=sum(p.numel() for p in params if p.requires_grad),
        total=sum(p.numel() for p in params),
    )


def loraplus_param_groups(model: nn.Module, lr: float, loraplus_lr_ratio: float = 16.0) -> list[dict]:
    """LoRA+: parameter groups in which every B trains ``loraplus_lr_ratio`` times faster than A.

    For ``torch.optim.AdamW(loraplus_param_groups(model, lr=1e-3))``. As in PEFT's
    ``create_loraplus_optimizer``, DoRA's magnitude vectors go with B, and any other
    trainable parameter with A. Each group also carries a "name" for printing.
    """
    checks.model(model, "loraplus_param_groups")
    checks.number("lr", lr, "lr=1e-3")
    checks.number("loraplus_lr_ratio", loraplus_lr_ratio, "loraplus_lr_ratio=16")
    layers = _lora_layers(model).values()
    if not layers:
        raise LoraValueError("model has no LoRA layers; call inject_lora(model, targets, r, alpha) first")
    fast = {id(p) for layer in layers for name, p in layer.named_parameters(recurse=False) if name != "lora_A"}
    trainable = [p for p in model.parameters() if p.requires_grad]
    return [
        {"name": "lora_A and the rest", "params": [p for p in trainable if id(p) not in fast], "lr": lr},
        {"name": "lora_B", "params": [p for p in trainable if id(p) in fast], "lr": lr * loraplus_lr_ratio},
    ]


# ---------------------------------------------------------------------------
# Adapters on disk: only the LoRA tensors, as safetensors, never pickle.
# ---------------------------------------------------------------------------


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The LoRA tensors of ``model``: {"<layer>.lora_A": (r, in), "<layer>.lora_B": (out, r)}.

    DoRA layers add "<layer>.lora_magnitude_vector": (out,).
    """
    return {
        f"{name}.{part}": getattr(layer, part).detach()
        for name, layer in _lora_layers(model).items()
        for part in LORA_PARAMETERS
        if hasattr(layer, part)
    }


def _uniform_settings(model: nn.Module) -> dict[str, object]:
    """The one setting (r, alpha, variants) that every LoRA layer of ``model`` shares, or a ValueError."""
    checks.not_serving(model, "this call")
    layers = _lora_layers(model)
    if not layers:
        raise LoraValueError("model has no LoRA layers; call inject_lora(model, targets, r, alpha) first")
    described = {_describe(_settings(layer)) for layer in layers.values()}
    if len(described) > 1:
        raise LoraValueError(f"LoRA layers use several settings {sorted(described)}; one file holds one")
    return _settings(next(iter(layers.values())))


def _one_config(model: nn.Module) -> tuple[int, float, bool]:
    """(r, alpha, use_rslora) shared by all LoRA layers, for adapter files and mixed batches (A and B only)."""
    settings = _uniform_settings(model)
    if settings["use_dora"]:
        raise LoraValueError(
            "adapter files and mixed_adapters hold A and B only, not DoRA's magnitude vectors; "
            "save a DoRA adapter with export_peft(model, directory) and load it with import_peft"
        )
    if settings["init_lora_weights"] == "pissa":
        raise LoraValueError(
            "a PiSSA adapter only works on the residual base it was cut from, which no adapter file holds; "
            "save the whole model instead: save_file(model.state_dict(), path)"
        )
    return settings["r"], settings["alpha"], settings["use_rslora"]


def save_adapter(model: nn.Module, path: str | os.PathLike) -> Path:
    """Write the LoRA tensors of ``model`` to ``path`` (safetensors), r, alpha and targets in the metadata.

    The file appears whole or not at all: it is written to a temporary file, then renamed.
    Plain LoRA and rsLoRA only; DoRA and PiSSA get an error that names the way out.
    """
    checks.model(model, "save_adapter")
    path = checks.path("path", path, "'rotate.safetensors'")
    r, alpha, use_rslora = _one_config(model)
    checks.unmerged(list(_lora_layers(model).values()), "save_adapter")
    targets = sorted({name.rpartition(".")[2] for name in _lora_layers(model)})
    meta = {
        "format": "lora_mini",
        "r": str(r),
        "alpha": repr(float(alpha)),
        "use_rslora": json.dumps(use_rslora),
        "targets": json.dumps(targets),
    }
    tensors = {k: v.contiguous().cpu() for k, v in lora_state_dict(model).items()}
    _write_atomic(path, lambda tmp: save_file(tensors, tmp, metadata=meta))
    return path


def _write_atomic(path: Path, write) -> None:
    """``write(tmp)`` a short-named temporary file beside ``path``, then rename it to ``path``."""
    if path.is_dir():
        raise AdapterFileError(f"{path} is a folder; pass a file name inside it, e.g. {path / 'adapter.safetensors'}")
    if not path.parent.is_dir():
        raise AdapterFileError(f"cannot write {path}: the folder {path.parent} does not exist; create it first")
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".lora-", suffix=".tmp")
        os.close(fd)
        write(tmp)
        os.replace(tmp, path)
    except OSError as e:
        raise AdapterFileError(f"cannot write {path} ({e.strerror or e}); choose another file name or folder") from e
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)


def _read_adapter(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    try:
        with safe_open(path, framework="pt") as f:  # safetensors parses the header: no pickle, no Python JSON
            meta = f.metadata() or {}
        tensors = load_file(path)
    except (SafetensorError, ValueError, UnicodeDecodeError, OverflowError, MemoryError, OSError) as e:
        raise AdapterFileError(
            f"{path} is not a readable safetensors adapter file ({e}); save one with save_adapter()"
        ) from e
    if meta.get("format") != "lora_mini":
        raise AdapterFileError(f"{path} has no lora_mini metadata (r, alpha, targets); save it with save_adapter()")
    return tensors, meta


def load_adapter(model: nn.Module, path: str | os.PathLike) -> None:
    """Copy the LoRA tensors saved at ``path`` into the LoRA layers of ``model`` (in place).

    The file must match the model exactly: same rank, alpha, rsLoRA or not, layer names and shapes.
    On any mismatch nothing is changed and the error lists what differs.
    """
    checks.model(model, "load_adapter")
    path = checks.path("path", path, "'rotate.safetensors'")
    if not path.is_file():
        raise AdapterFileError(f"no adapter file at {path}; pass the path that save_adapter() wrote")
    tensors, meta = _read_adapter(path)
    file_r, file_alpha, file_rslora, file_targets = checks.adapter_meta(path, meta)
    r, alpha, use_rslora = _one_config(model)
    if (file_r, file_alpha, file_rslora) != (r, float(alpha), use_rslora):
        raise AdapterFileError(
            f"{path} holds an adapter with r={file_r}, alpha={file_alpha:g}, use_rslora={file_rslora} but the model "
            f"has r={r}, alpha={alpha:g}, use_rslora={use_rslora}; inject_lora into a fresh base with "
            f"targets={file_targets}, r={file_r}, alpha={file_alpha:g}, use_rslora={file_rslora}"
        )
    own = lora_state_dict(model)
    problems = [f"missing in file: {k}" for k in own if k not in tensors]
    problems += [f"not in model: {k}" for k in tensors if k not in own]
    problems += [
        f"shape of {k}: file {tuple(tensors[k].shape)}, model {tuple(v.shape)}"
        for k, v in own.items()
        if k in tensors and tensors[k].shape != v.shape
    ]
    if problems:
        raise AdapterFileError(f"{path} does not fit this model:\n  " + "\n  ".join(problems))
    checks.unmerged(list(_lora_layers(model).values()), "load_adapter")
    values = {k: checks.loaded_tensor(str(path), k, tensors[k], v.dtype) for k, v in own.items()}
    with torch.no_grad():
        for k, v in own.items():
            v.copy_(values[k])
