"""Argument guards: every public call checks its input here before it changes anything.

Each guard returns the checked value or raises an error of :mod:`lora_mini.errors` whose
message names the argument, the value it got and the fix. They live here, out of the way,
so that lora.py, train.py and the rest read as the algorithm they teach.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn as nn

from .errors import LoraStateError, LoraTypeError, LoraValueError

MAX_NEW_NUMBERS = 2**28  # one inject_lora may add at most this many numbers (1 GiB of float32)
MAX_BLOCK_SIZE = 4096  # quantisation blocks: QLoRA uses 64


# ---------------------------------------------------------------------------
# Numbers and flags
# ---------------------------------------------------------------------------


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def integer(name: str, value: object, lo: int, example: str, hi: int | None = None) -> int:
    """An int in [lo, hi] (bools and floats refused), e.g. r, steps, batch_size."""
    desc = "a positive integer" if lo == 1 and hi is None else f"an integer >= {lo}" if hi is None else f"an integer in [{lo}, {hi}]"
    if isinstance(value, bool) or not isinstance(value, int):
        raise LoraTypeError(f"{name} must be {desc}, e.g. {example}, got {value!r} ({type(value).__name__})")
    if value < lo or (hi is not None and value > hi):
        raise LoraValueError(f"{name} must be {desc}, e.g. {example}, got {value!r}")
    return value


def number(name: str, value: object, example: str, lo: float = 0.0, hi: float = math.inf,
           lo_open: bool = True, hi_open: bool = True) -> float:
    """A finite real number in the interval (lo, hi) (ends open or closed); inf and nan refused."""
    if (lo, hi, lo_open) == (0.0, math.inf, True):
        desc = "a positive number"
    else:
        desc = f"in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    if not _is_real(value):
        raise LoraTypeError(f"{name} must be {desc}, e.g. {example}, got {value!r} ({type(value).__name__})")
    x = float(value)
    below = x <= lo if lo_open else x < lo
    above = x >= hi if hi_open else x > hi
    if not math.isfinite(x) or below or above:
        raise LoraValueError(f"{name} must be {desc} (finite), e.g. {example}, got {value!r}")
    return value


def flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise LoraTypeError(f"{name} must be True or False, got {value!r}")
    return value


def hparams(r: object, alpha: object, dropout: object) -> None:
    """LoRA's r (positive int), alpha (positive, finite) and dropout (in [0, 1))."""
    integer("r", r, 1, "r=4 (the rank)")
    number("alpha", alpha, "alpha=8")
    number("dropout", dropout, "dropout=0.0 for none", lo=0.0, hi=1.0, lo_open=False)


def model(value: object, call: str) -> nn.Module:
    if not isinstance(value, nn.Module):
        raise LoraTypeError(
            f"{call} takes a torch.nn.Module as its first argument (e.g. model = load_base()), "
            f"got {value!r} ({type(value).__name__})"
        )
    return value


def path(name: str, value: object, example: str) -> Path:
    if not isinstance(value, (str, os.PathLike)):
        raise LoraTypeError(f"{name} must be a file path (str or Path), e.g. {example}, got {value!r}")
    if str(value) in ("", "."):
        raise LoraValueError(f"{name} is empty; pass a file or folder name, e.g. {example}")
    return Path(value)


def new_numbers(count: int, what: str) -> None:
    """Refuse an allocation too large for any laptop before trying it."""
    if count > MAX_NEW_NUMBERS:
        raise LoraValueError(
            f"{what} would add {count:,} numbers ({count * 4 / 2**30:,.1f} GiB as float32), more than "
            f"{MAX_NEW_NUMBERS:,}; choose a smaller r (the toy's layers are 96 to 384 wide, r=4 to 64 is plenty)"
        )


# ---------------------------------------------------------------------------
# Model state: merged, disabled, inside mixed_adapters
# ---------------------------------------------------------------------------


def not_serving(net: nn.Module, call: str) -> None:
    """Refuse calls inside ``with mixed_adapters(...)``: the LoRA layers are swapped out there.

    The swapped-in layers (serving.MixedLoRALinear) say so with ``mixed_adapters_layer = True``."""
    if any(getattr(m, "mixed_adapters_layer", False) for m in net.modules()):
        raise LoraStateError(
            f"{call} cannot run inside `with mixed_adapters(...)`: the LoRA layers are swapped for "
            "per-row adapter stacks there; leave the with-block first"
        )


def unmerged(layers: Sequence[nn.Module], call: str) -> None:
    if any(layer.merged for layer in layers):
        raise LoraStateError(f"{call} needs unmerged LoRA layers; call unmerge_lora(model) first")


def enabled(net: nn.Module, call: str) -> None:
    """Refuse calls inside ``with disable_lora(model):`` (which marks the model, and each LoRA layer)."""
    disabled = any(hasattr(m, "lora_A") and getattr(m, "disabled", False) for m in net.modules())  # LoRA layers
    if disabled or getattr(net, "_lora_disabled_depth", 0):
        raise LoraStateError(f"{call} cannot run inside `with disable_lora(model):`; leave that block first")


# ---------------------------------------------------------------------------
# LoRA's config, targets and variants (lora.py)
# ---------------------------------------------------------------------------


def lora_config(config: Any) -> None:
    """A LoraConfig's fields: r, alpha, dropout as in hparams; flags True or False; init True or 'pissa'."""
    hparams(config.r, config.alpha, config.dropout)
    flag("use_rslora", config.use_rslora)
    flag("use_dora", config.use_dora)
    init = config.init_lora_weights
    if init is not True and not (isinstance(init, str) and init == "pissa"):
        raise LoraValueError(
            f"init_lora_weights must be True (A random, B zero) or 'pissa' (A and B from the SVD of W), got {init!r}"
        )


def target_names(targets: object) -> list[str]:
    targets = [targets] if isinstance(targets, str) else targets
    if not isinstance(targets, (list, tuple)) or not targets or not all(isinstance(t, str) for t in targets):
        raise LoraTypeError(f"targets must be a list of layer names such as ['q_proj', 'v_proj'], got {targets!r}")
    return list(targets)


def injection_plan(net: nn.Module, targets: list[str], config: Any, lora_layers: dict[str, nn.Module],
                   wrappable: tuple[type, ...]) -> list[str]:
    """The names inject_lora wraps, in model order; raises for any target that does not fit, before any change.

    ``lora_layers`` are the model's LoRA layers already there; ``wrappable`` the classes LoRA can wrap.
    """
    inner = {id(layer.base) for layer in lora_layers.values()}  # Linears already wrapped
    modules = [(n, m) for n, m in net.named_modules() if id(m) not in inner]
    linears = [n for n, m in modules if isinstance(m, wrappable) or n in lora_layers]
    to_wrap: set[str] = set()
    for target in targets:
        found = [(n, m) for n, m in modules if n == target or n.endswith("." + target)]
        if not found:
            raise LoraValueError(f"target {target!r} matches no module. Targets are names of nn.Linear layers, "
                                 f"matched exactly or by their last parts; available: {linears}")
        for name, module in found:
            if name in lora_layers and module.config != config:
                raise LoraValueError(f"{name} already has LoRA with {module.config}; to use {config}, "
                                     "start again from a fresh base (load_base())")
            if name not in lora_layers and not isinstance(module, wrappable):
                raise LoraTypeError(f"target {target!r} matches {name}, a {type(module).__name__}, not an nn.Linear; "
                                    f"name Linear layers instead, e.g. one of {linears[:6]}")
            if name not in lora_layers:
                if config.init_lora_weights == "pissa":
                    _pissa_fits(name, module, config.r)
                to_wrap.add(name)
    return [n for n in linears if n in to_wrap]


def _pissa_fits(name: str, module: nn.Module, r: int) -> None:
    if not isinstance(module, nn.Linear):
        raise LoraValueError(
            f"init_lora_weights='pissa' rewrites the base weight of {name} as a residual, which a quantised "
            "QuantLinear cannot hold exactly; PiSSA needs a float base (load_base() without quantize_base)"
        )
    k = min(module.in_features, module.out_features)
    if r > k:
        raise LoraValueError(f"init_lora_weights='pissa' takes the top r singular vectors, but {name} has only {k}; "
                             f"use r <= {k}")


def all_or_none(bases: dict[str, nn.Module], build: Callable, call: str) -> dict:
    """{name: build(name, base)} for every base, or none: building a LoRA layer freezes its base, so on any
    failure the bases' requires_grad flags are put back; the allocator's or an SVD's error names ``call``."""
    flags = {p: p.requires_grad for base in bases.values() for p in base.parameters()}
    try:
        return {name: build(name, base) for name, base in bases.items()}
    except BaseException as e:
        for p, was in flags.items():
            p.requires_grad_(was)
        if isinstance(e, (RuntimeError, MemoryError)):
            raise LoraValueError(f"{call} could not build its layers ({type(e).__name__}: {e})") from e
        raise


def finite_weight(name: str, weight: torch.Tensor) -> torch.Tensor:
    if not bool(torch.isfinite(weight).all()):
        raise LoraValueError(f"the weight of {name} holds NaN or inf; PiSSA's SVD needs a finite W")
    return weight


def float_base(layer: nn.Module, name: str = "this layer") -> None:
    """Merging needs a float base: a QuantLinear would re-quantise W + ΔW."""
    if not isinstance(layer.base, nn.Linear):
        raise LoraValueError(
            f"{name} wraps a quantised QuantLinear: merging would re-quantise W + ΔW and lose the adapter's "
            "precision; keep the adapter unmerged (QLoRA serves it that way), or inject into a float base to merge"
        )


def no_pissa(layers: Sequence[nn.Module], call: str) -> None:
    if any(layer.config.init_lora_weights == "pissa" for layer in layers):
        raise LoraValueError(
            f"{call} cannot restart PiSSA layers: their base weight is now the residual of the SVD; "
            "start again from a fresh base (load_base()) and inject_lora(..., init_lora_weights='pissa')"
        )


# ---------------------------------------------------------------------------
# train()
# ---------------------------------------------------------------------------


def tasks(name: str, value: object, allow_empty: bool = False) -> list[str]:
    """A task name or a list of them, each one of TASK_FNS."""
    from .tasks import TASK_FNS

    names = [value] if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not all(isinstance(t, str) for t in names):
        raise LoraTypeError(f"{name} must be a task name or a list of them, e.g. ['rotate'], got {value!r}")
    if not names and not allow_empty:
        raise LoraValueError(f"{name} is empty; name at least one task, e.g. 'rotate'")
    unknown = [t for t in names if t not in TASK_FNS]
    if unknown:
        raise LoraValueError(f"{name} holds unknown task(s) {unknown}; choose from {sorted(TASK_FNS)}")
    return list(names)


def dataset(value: object, vocab_size: int, block_size: int) -> None:
    """A fixed dataset (idx (N, T), targets (N, T)): integer tokens in the vocabulary, N >= 1."""
    if len(value) != 2 or not all(isinstance(t, torch.Tensor) for t in value):
        raise LoraTypeError("data as a dataset must be a pair (idx, targets) of tensors, e.g. make_dataset('rotate', 64)")
    idx, targets = value
    if idx.dim() != 2 or targets.shape != idx.shape:
        raise LoraValueError(
            f"data must be (idx (N, T), targets (N, T)) of one shape, got {tuple(idx.shape)} and "
            f"{tuple(targets.shape)}; build it with make_dataset(task, n)"
        )
    if idx.dtype.is_floating_point or idx.dtype == torch.bool or targets.dtype.is_floating_point or targets.dtype == torch.bool:
        raise LoraTypeError(f"data must hold integer token ids, got dtypes {idx.dtype} and {targets.dtype}")
    N, T = idx.shape
    if N == 0 or T == 0:
        raise LoraValueError(f"data is empty (shape {tuple(idx.shape)}); give at least one example")
    if T > block_size:
        raise LoraValueError(f"data sequences have {T} tokens, the model takes at most {block_size}")
    if int(idx.min()) < 0 or int(idx.max()) >= vocab_size:
        raise LoraValueError(
            f"data idx holds token ids {int(idx.min())}..{int(idx.max())}; the vocabulary is 0..{vocab_size - 1}"
        )
    scored = targets[targets != -100]
    if scored.numel() and (int(scored.min()) < 0 or int(scored.max()) >= vocab_size):
        raise LoraValueError(
            f"data targets hold ids {int(scored.min())}..{int(scored.max())}; use 0..{vocab_size - 1}, "
            "or -100 for positions not scored"
        )


def callback(value: object) -> Callable | None:
    if value is not None and not callable(value):
        raise LoraTypeError(f"callback must be a function callback(step, model) or None, got {value!r}")
    return value
