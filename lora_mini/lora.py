"""LoRA: freeze a pretrained weight W and learn a low-rank update ΔW = (alpha / r) · B · A.

For a frozen ``nn.Linear`` with weight W of shape (out, in), LoRA adds two small
trainable matrices, A of shape (r, in) and B of shape (out, r), and computes

    h = W x + (alpha / r) · B (A x)

B starts at zero, so at step 0 the adapted model is exactly the base model.
Only A and B train: r · (in + out) numbers instead of in · out.
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


def _check_hparams(r: object, alpha: object, dropout: object) -> None:
    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
        raise ValueError(f"r must be a positive integer (the rank, e.g. r=4), got {r!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha > 0:
        raise ValueError(f"alpha must be a positive number (e.g. alpha=8), got {alpha!r}")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1) (use 0.0 for none), got {dropout!r}")


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank update: y = base(x) + scaling · B A x."""

    def __init__(self, base: nn.Linear, r: int, alpha: float, dropout: float = 0.0) -> None:
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"LoRALinear wraps an nn.Linear, got {type(base).__name__}")
        _check_hparams(r, alpha, dropout)
        self.base = base
        self.base.requires_grad_(False)
        self.r, self.alpha = r, alpha
        self.scaling = alpha / r
        w = base.weight
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
        a = F.linear(self.lora_dropout(x), self.lora_A)  # (..., r)
        return y + self.scaling * F.linear(a, self.lora_B)  # (..., out)

    def delta_weight(self) -> torch.Tensor:
        """ΔW = scaling · B @ A, shape (out, in): what merging adds to base.weight."""
        return self.scaling * (self.lora_B @ self.lora_A)  # (out, in)

    @torch.no_grad()
    def merge(self) -> None:
        """Fold ΔW into base.weight, so forward costs one matmul. Does nothing if already merged."""
        if not self.merged:
            self.base.weight += self.delta_weight()
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Take ΔW back out of base.weight. Does nothing if not merged."""
        if self.merged:
            self.base.weight -= self.delta_weight()
            self.merged = False

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha}, scaling={self.scaling:g}, merged={self.merged}"


# ---------------------------------------------------------------------------
# Model surgery: find Linear layers by name, wrap them, freeze everything else.
# ---------------------------------------------------------------------------


def _matches(name: str, target: str) -> bool:
    return name == target or name.endswith("." + target)


def _lora_layers(model: nn.Module) -> dict[str, LoRALinear]:
    return {n: m for n, m in model.named_modules() if isinstance(m, LoRALinear)}


def _plan_injection(model: nn.Module, targets: Sequence[str], r: int, alpha: float) -> list[str]:
    """Check every target against the model and return the names to wrap; raise before any change."""
    inner = {id(layer.base) for layer in _lora_layers(model).values()}  # Linears already wrapped
    modules = [(n, m) for n, m in model.named_modules() if id(m) not in inner]
    linears = [n for n, m in modules if isinstance(m, (nn.Linear, LoRALinear))]
    to_wrap: set[str] = set()
    for target in targets:
        found = [(n, m) for n, m in modules if _matches(n, target)]
        if not found:
            raise ValueError(
                f"target {target!r} matches no module. Targets are names of nn.Linear layers, "
                f"matched exactly or by their last parts; available: {linears}"
            )
        for name, module in found:
            if isinstance(module, LoRALinear) and (module.r, module.alpha) != (r, alpha):
                raise ValueError(
                    f"{name} already has LoRA with r={module.r}, alpha={module.alpha}; "
                    f"to use r={r}, alpha={alpha}, start again from a fresh base (load_base())"
                )
            if not isinstance(module, (nn.Linear, LoRALinear)):
                raise TypeError(
                    f"target {target!r} matches {name}, a {type(module).__name__}, not an nn.Linear; "
                    f"name Linear layers instead, e.g. one of {linears[:6]}"
                )
            if isinstance(module, nn.Linear):
                to_wrap.add(name)
    return [n for n in linears if n in to_wrap]  # in model order


def inject_lora(
    model: nn.Module, targets: str | Sequence[str], r: int, alpha: float, dropout: float = 0.0
) -> list[str]:
    """Replace each targeted ``nn.Linear`` by a :class:`LoRALinear` and freeze all other parameters.

    A target matches a Linear whose qualified name equals it or ends with ``"." + target``
    (so ``"q_proj"`` hits ``blocks.0.attn.q_proj`` in every block). Layers that already
    carry LoRA are left alone. Returns the qualified names that were replaced.
    """
    targets = [targets] if isinstance(targets, str) else list(targets)
    if not targets or not all(isinstance(t, str) for t in targets):
        raise TypeError(f"targets must be a list of layer names such as ['q_proj', 'v_proj'], got {targets!r}")
    _check_hparams(r, alpha, dropout)
    names = _plan_injection(model, targets, r, alpha)  # raises before anything changes
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        setattr(parent, child, LoRALinear(getattr(parent, child), r, alpha, dropout))
    for module in model.modules():
        for p_name, p in module.named_parameters(recurse=False):
            p.requires_grad_(isinstance(module, LoRALinear) and p_name in ("lora_A", "lora_B"))
    return names


def reset_lora(model: nn.Module) -> None:
    """Start every adapter of ``model`` afresh (A random, B zero), e.g. to train one for another task."""
    for layer in _lora_layers(model).values():
        if layer.merged:
            raise ValueError("reset_lora needs unmerged layers; call unmerge_lora(model) first")
    for layer in _lora_layers(model).values():
        layer.reset_parameters()


def merge_lora(model: nn.Module) -> None:
    """Merge every LoRA layer of ``model`` into its base weight (zero added inference latency)."""
    for layer in _lora_layers(model).values():
        layer.merge()


def unmerge_lora(model: nn.Module) -> None:
    """Undo :func:`merge_lora` (up to float rounding)."""
    for layer in _lora_layers(model).values():
        layer.unmerge()


@contextmanager
def disable_lora(model: nn.Module) -> Iterator[nn.Module]:
    """Inside ``with disable_lora(model):`` the model computes the pure base, adapters ignored."""
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
# Counting
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


# ---------------------------------------------------------------------------
# Adapters on disk: only the LoRA tensors, as safetensors, never pickle.
# ---------------------------------------------------------------------------


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The LoRA tensors of ``model``: {"<layer>.lora_A": (r, in), "<layer>.lora_B": (out, r)}."""
    return {
        f"{name}.{part}": getattr(layer, part).detach()
        for name, layer in _lora_layers(model).items()
        for part in ("lora_A", "lora_B")
    }


def _one_config(model: nn.Module) -> tuple[int, float]:
    layers = _lora_layers(model)
    if not layers:
        raise ValueError("model has no LoRA layers; call inject_lora(model, targets, r, alpha) first")
    configs = {(layer.r, layer.alpha) for layer in layers.values()}
    if len(configs) > 1:
        raise ValueError(f"LoRA layers use several (r, alpha) settings {sorted(configs)}; one file holds one")
    return configs.pop()


def save_adapter(model: nn.Module, path: str | os.PathLike) -> Path:
    """Write the LoRA tensors of ``model`` to ``path`` (safetensors), r, alpha and targets in the metadata.

    The file appears whole or not at all: it is written to a temporary file, then renamed.
    """
    r, alpha = _one_config(model)
    if any(layer.merged for layer in _lora_layers(model).values()):
        raise ValueError("save_adapter needs unmerged layers; call unmerge_lora(model) first")
    path = Path(path)
    targets = sorted({name.rpartition(".")[2] for name in _lora_layers(model)})
    meta = {"format": "lora_mini", "r": str(r), "alpha": repr(float(alpha)), "targets": json.dumps(targets)}
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

    The file must match the model exactly: same rank, alpha, layer names and shapes.
    On any mismatch nothing is changed and the error lists what differs.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no adapter file at {path}; pass the path that save_adapter() wrote")
    tensors, meta = _read_adapter(path)
    r_file, alpha_file = int(meta["r"]), float(meta["alpha"])
    r, alpha = _one_config(model)
    if (r_file, alpha_file) != (r, float(alpha)):
        raise ValueError(
            f"{path} holds an adapter with r={r_file}, alpha={alpha_file:g} but the model has "
            f"r={r}, alpha={alpha:g}; inject_lora into a fresh base with "
            f"targets={json.loads(meta['targets'])}, r={r_file}, alpha={alpha_file:g}"
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
