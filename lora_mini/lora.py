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
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .quant import QuantLinear

LORA_PARAMETERS = ("lora_A", "lora_B", "lora_magnitude_vector")  # what trains; the last only with DoRA


def _check_hparams(r: object, alpha: object, dropout: object) -> None:
    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
        raise ValueError(f"r must be a positive integer (the rank, e.g. r=4), got {r!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha > 0:
        raise ValueError(f"alpha must be a positive number (e.g. alpha=8), got {alpha!r}")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1) (use 0.0 for none), got {dropout!r}")


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank update: y = base(x) + scaling · B A x."""

    def __init__(
        self, base: nn.Linear | QuantLinear, r: int, alpha: float, dropout: float = 0.0, use_rslora: bool = False
    ) -> None:
        super().__init__()
        if not isinstance(base, (nn.Linear, QuantLinear)):
            raise TypeError(f"LoRALinear wraps an nn.Linear (or a QuantLinear), got {type(base).__name__}")
        _check_hparams(r, alpha, dropout)
        _check_flag("use_rslora", use_rslora)
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
    def pissa_init(self) -> None:
        """PiSSA: B·A takes the top-r singular part of W and the base keeps the residual, output unchanged.

        With W = U S Vᵀ: A = sqrt(S_r / scaling) V_rᵀ (r, in), B = U_r sqrt(S_r / scaling) (out, r),
        so scaling · B A = U_r S_r V_rᵀ, and base.weight becomes W - scaling · B A (as PEFT does).
        """
        U, S, Vh = torch.linalg.svd(self.base.weight.float(), full_matrices=False)  # (out, k), (k,), (k, in)
        root = (S[: self.r] / self.scaling).sqrt()  # (r,)
        self.lora_A.copy_(root[:, None] * Vh[: self.r])  # (r, in)
        self.lora_B.copy_(U[:, : self.r] * root)  # (out, r)
        self.base.weight -= self.delta_weight()  # the residual: W - U_r S_r V_rᵀ
        self.init_lora_weights = "pissa"

    def extra_repr(self) -> str:
        extra = ", use_rslora=True" if self.use_rslora else ""
        extra += ", init_lora_weights='pissa'" if self.init_lora_weights == "pissa" else ""
        return f"r={self.r}, alpha={self.alpha}, scaling={self.scaling:g}{extra}, merged={self.merged}"


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
        """‖W + ΔW‖ of each output row, shape (out,), computed without gradient."""
        with torch.no_grad():
            return torch.linalg.norm(self.base_weight() + self.delta_weight(), dim=1)  # (out,)

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
            self._merge_scale = self.lora_magnitude_vector / self.weight_norm()  # (out,) kept for unmerge
            self.base.weight.copy_(self._merge_scale[:, None] * (self.base.weight + self.delta_weight()))
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """W ← merged W / scale - ΔW with the scale used by merge. Does nothing if not merged."""
        if self.merged:
            self.base.weight.copy_(self.base.weight / self._merge_scale[:, None] - self.delta_weight())
            self.merged = False


# ---------------------------------------------------------------------------
# Model surgery: find Linear layers by name, wrap them, freeze everything else.
# ---------------------------------------------------------------------------


def _check_float_base(layer: LoRALinear, name: str = "this layer") -> None:
    if isinstance(layer.base, QuantLinear):
        raise ValueError(
            f"{name} wraps a quantised QuantLinear: merging would re-quantise W + ΔW and lose the adapter's "
            "precision; keep the adapter unmerged (QLoRA serves it that way), or inject into a float base to merge"
        )


def _check_flag(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")


def _check_variants(use_rslora: object, use_dora: object, init_lora_weights: object) -> None:
    _check_flag("use_rslora", use_rslora)
    _check_flag("use_dora", use_dora)
    if init_lora_weights is not True and init_lora_weights != "pissa":
        raise ValueError(
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
        raise ValueError(
            f"init_lora_weights='pissa' rewrites the base weight of {name} as a residual, which a quantised "
            "QuantLinear cannot hold exactly; PiSSA needs a float base (load_base() without quantize_base)"
        )
    if r > min(module.in_features, module.out_features):
        raise ValueError(
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
            raise ValueError(
                f"target {target!r} matches no module. Targets are names of nn.Linear layers, "
                f"matched exactly or by their last parts; available: {linears}"
            )
        for name, module in found:
            if isinstance(module, LoRALinear) and _settings(module) != settings:
                raise ValueError(
                    f"{name} already has LoRA with {_describe(_settings(module))}; "
                    f"to use {_describe(settings)}, start again from a fresh base (load_base())"
                )
            if not isinstance(module, (*wrappable, LoRALinear)):
                raise TypeError(
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
    targets = [targets] if isinstance(targets, str) else list(targets)
    if not targets or not all(isinstance(t, str) for t in targets):
        raise TypeError(f"targets must be a list of layer names such as ['q_proj', 'v_proj'], got {targets!r}")
    _check_hparams(r, alpha, dropout)
    _check_variants(use_rslora, use_dora, init_lora_weights)
    settings = dict(r=r, alpha=alpha, use_rslora=use_rslora, use_dora=use_dora, init_lora_weights=init_lora_weights)
    names = _plan_injection(model, targets, settings)  # raises before anything changes
    layer_class = DoRALinear if use_dora else LoRALinear
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        layer = layer_class(getattr(parent, child), r, alpha, dropout, use_rslora)
        if init_lora_weights == "pissa":
            layer.pissa_init()
        setattr(parent, child, layer)
    for module in model.modules():
        for p_name, p in module.named_parameters(recurse=False):
            p.requires_grad_(isinstance(module, LoRALinear) and p_name in LORA_PARAMETERS)
    return names


def reset_lora(model: nn.Module) -> None:
    """Start every adapter of ``model`` afresh (A random, B zero), e.g. to train one for another task."""
    for layer in _lora_layers(model).values():
        if layer.merged:
            raise ValueError("reset_lora needs unmerged layers; call unmerge_lora(model) first")
        if layer.init_lora_weights == "pissa":
            raise ValueError(
                "reset_lora cannot restart PiSSA layers: their base weight is now the residual of the SVD; "
                "start again from a fresh base (load_base()) and inject_lora(..., init_lora_weights='pissa')"
            )
    for layer in _lora_layers(model).values():
        layer.reset_parameters()


def merge_lora(model: nn.Module) -> None:
    """Merge every LoRA layer of ``model`` into its base weight (zero added inference latency)."""
    for name, layer in _lora_layers(model).items():
        _check_float_base(layer, name)  # all checked before any layer merges
    for layer in _lora_layers(model).values():
        layer.merge()


def unmerge_lora(model: nn.Module) -> None:
    """Undo :func:`merge_lora` (up to float rounding)."""
    for layer in _lora_layers(model).values():
        layer.unmerge()


@contextmanager
def disable_lora(model: nn.Module) -> Iterator[nn.Module]:
    """Inside ``with disable_lora(model):`` the model computes its base, adapters ignored.

    After PiSSA (``init_lora_weights="pissa"``) the base is the residual W - scaling · B A,
    so this runs the residual model, not the original one.
    """
    layers = _lora_layers(model).values()
    if any(layer.merged for layer in layers):
        raise ValueError("cannot disable merged LoRA layers; call unmerge_lora(model) first")
    for layer in layers:
        layer.disabled = True
    try:
        yield model
    finally:
        for layer in layers:
            layer.disabled = False


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
    for what, value in (("lr", lr), ("loraplus_lr_ratio", loraplus_lr_ratio)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"{what} must be a positive number (e.g. lr=1e-3, loraplus_lr_ratio=16), got {value!r}")
    layers = _lora_layers(model).values()
    if not layers:
        raise ValueError("model has no LoRA layers; call inject_lora(model, targets, r, alpha) first")
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
    layers = _lora_layers(model)
    if not layers:
        raise ValueError("model has no LoRA layers; call inject_lora(model, targets, r, alpha) first")
    described = {_describe(_settings(layer)) for layer in layers.values()}
    if len(described) > 1:
        raise ValueError(f"LoRA layers use several settings {sorted(described)}; one file holds one")
    return _settings(next(iter(layers.values())))


def _one_config(model: nn.Module) -> tuple[int, float, bool]:
    """(r, alpha, use_rslora) shared by all LoRA layers, for adapter files and mixed batches (A and B only)."""
    settings = _uniform_settings(model)
    if settings["use_dora"]:
        raise ValueError(
            "adapter files and mixed_adapters hold A and B only, not DoRA's magnitude vectors; "
            "save a DoRA adapter with export_peft(model, directory) and load it with import_peft"
        )
    if settings["init_lora_weights"] == "pissa":
        raise ValueError(
            "a PiSSA adapter only works on the residual base it was cut from, which no adapter file holds; "
            "save the whole model instead: save_file(model.state_dict(), path)"
        )
    return settings["r"], settings["alpha"], settings["use_rslora"]


def save_adapter(model: nn.Module, path: str | os.PathLike) -> Path:
    """Write the LoRA tensors of ``model`` to ``path`` (safetensors), r, alpha and targets in the metadata.

    The file appears whole or not at all: it is written to a temporary file, then renamed.
    Plain LoRA and rsLoRA only; DoRA and PiSSA get an error that names the way out.
    """
    r, alpha, use_rslora = _one_config(model)
    if any(layer.merged for layer in _lora_layers(model).values()):
        raise ValueError("save_adapter needs unmerged layers; call unmerge_lora(model) first")
    path = Path(path)
    targets = sorted({name.rpartition(".")[2] for name in _lora_layers(model)})
    meta = {
        "format": "lora_mini",
        "r": str(r),
        "alpha": repr(float(alpha)),
        "use_rslora": json.dumps(use_rslora),
        "targets": json.dumps(targets),
    }
    tensors = {k: v.contiguous().cpu() for k, v in lora_state_dict(model).items()}
    fd, tmp = tempfile.mkstemp(dir=path.parent or ".", prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=meta)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def _read_adapter(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    try:
        with open(path, "rb") as f:
            header_len = int.from_bytes(f.read(8), "little")
            meta = json.loads(f.read(header_len)).get("__metadata__") or {}
        tensors = load_file(path)
    except (SafetensorError, ValueError, UnicodeDecodeError, OverflowError, MemoryError) as e:
        raise ValueError(f"{path} is not a readable safetensors adapter file ({e}); save one with save_adapter()") from e
    if meta.get("format") != "lora_mini" or "r" not in meta:
        raise ValueError(f"{path} has no lora_mini metadata (r, alpha, targets); save it with save_adapter()")
    return tensors, meta


def load_adapter(model: nn.Module, path: str | os.PathLike) -> None:
    """Copy the LoRA tensors saved at ``path`` into the LoRA layers of ``model`` (in place).

    The file must match the model exactly: same rank, alpha, rsLoRA or not, layer names and shapes.
    On any mismatch nothing is changed and the error lists what differs.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no adapter file at {path}; pass the path that save_adapter() wrote")
    tensors, meta = _read_adapter(path)
    file = (int(meta["r"]), float(meta["alpha"]), json.loads(meta.get("use_rslora", "false")))  # older files: plain
    r, alpha, use_rslora = _one_config(model)
    if file != (r, float(alpha), use_rslora):
        raise ValueError(
            f"{path} holds an adapter with r={file[0]}, alpha={file[1]:g}, use_rslora={file[2]} but the model has "
            f"r={r}, alpha={alpha:g}, use_rslora={use_rslora}; inject_lora into a fresh base with "
            f"targets={json.loads(meta['targets'])}, r={file[0]}, alpha={file[1]:g}, use_rslora={file[2]}"
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
        raise ValueError(f"{path} does not fit this model:\n  " + "\n  ".join(problems))
    if any(layer.merged for layer in _lora_layers(model).values()):
        raise ValueError("load_adapter needs unmerged layers; call unmerge_lora(model) first")
    with torch.no_grad():
        for k, v in own.items():
            v.copy_(tensors[k])
