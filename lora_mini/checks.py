"""Argument guards: every public call checks its input here before it changes anything.

Each guard returns the checked value or raises an error of :mod:`lora_mini.errors` whose
message names the argument, the value it got and the fix. They live here, out of the way,
so that lora.py, train.py and the rest read as the algorithm they teach.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn as nn

from .errors import AdapterFileError, LoraStateError, LoraTypeError, LoraValueError

MAX_NEW_NUMBERS = 2**28  # one inject_lora may add at most this many numbers (1 GiB of float32)
MAX_BLOCK_SIZE = 4096  # quantisation blocks: QLoRA uses 64
JSON_MAX_BYTES = 1_000_000  # an adapter_config.json is a few hundred bytes


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
    """Refuse calls inside ``with mixed_adapters(...)``: the LoRA layers are swapped out there."""
    from .serving import MixedLoRALinear  # serving imports lora, which imports this module

    if any(isinstance(m, MixedLoRALinear) for m in net.modules()):
        raise LoraStateError(
            f"{call} cannot run inside `with mixed_adapters(...)`: the LoRA layers are swapped for "
            "per-row adapter stacks there; leave the with-block first"
        )


def unmerged(layers: Sequence[nn.Module], call: str) -> None:
    if any(layer.merged for layer in layers):
        raise LoraStateError(f"{call} needs unmerged LoRA layers; call unmerge_lora(model) first")


def enabled(net: nn.Module, call: str) -> None:
    """Refuse calls inside ``with disable_lora(model):`` (which marks the model, and each LoRA layer)."""
    from .lora import LoRALinear

    disabled = any(isinstance(m, LoRALinear) and m.disabled for m in net.modules())
    if disabled or getattr(net, "_lora_disabled_depth", 0):
        raise LoraStateError(f"{call} cannot run inside `with disable_lora(model):`; leave that block first")


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


# ---------------------------------------------------------------------------
# Files: tensors, metadata, JSON
# ---------------------------------------------------------------------------


def loaded_tensor(where: str, key: str, tensor: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A tensor read from a file, as ``dtype``: floating, finite, and cast only where the cast is exact."""
    if not tensor.dtype.is_floating_point:
        raise AdapterFileError(f"{where}: {key} has dtype {tensor.dtype}; LoRA weights are floating point")
    if not bool(torch.isfinite(tensor).all()):
        raise AdapterFileError(f"{where}: {key} holds NaN or infinite values; the adapter is broken, train it again")
    cast = tensor.to(dtype)
    if cast.dtype != tensor.dtype and not torch.equal(cast.to(tensor.dtype), tensor):
        raise AdapterFileError(
            f"{where}: {key} is {tensor.dtype} and does not convert exactly to the model's {dtype}; "
            f"save it as {dtype}"
        )
    return cast


def read_json(file: Path) -> Any:
    """JSON from ``file``: any problem (unreadable, not JSON, absurdly nested or large) is an AdapterFileError."""
    try:
        if file.stat().st_size > JSON_MAX_BYTES:
            raise AdapterFileError(f"{file} is larger than {JSON_MAX_BYTES:,} bytes; it is not an adapter config")
        return json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError, OSError) as e:
        raise AdapterFileError(f"{file} is not valid JSON ({type(e).__name__}: {str(e)[:200]})") from e


def adapter_meta(where: Path, meta: dict[str, str]) -> tuple[int, float, bool, list[str] | None]:
    """(r, alpha, use_rslora, targets) from an adapter file's metadata, or an AdapterFileError naming the field."""

    def bad(field: str, why: str) -> AdapterFileError:
        return AdapterFileError(f"{where}: metadata field {field!r} {why}; save the adapter again with save_adapter()")

    r_text, alpha_text = meta.get("r"), meta.get("alpha")
    if r_text is None or alpha_text is None:
        raise bad("r" if r_text is None else "alpha", "is missing")
    if not r_text.isascii() or not r_text.isdigit() or int(r_text) < 1:
        raise bad("r", f"is {r_text!r}, not a positive integer")
    try:
        alpha = float(alpha_text)
    except ValueError:
        raise bad("alpha", f"is {alpha_text!r}, not a number") from None
    if not math.isfinite(alpha) or alpha <= 0:
        raise bad("alpha", f"is {alpha_text!r}, not a finite positive number")
    rslora_text = meta.get("use_rslora", "false")  # files from before rsLoRA: plain LoRA
    if rslora_text not in ("true", "false"):
        raise bad("use_rslora", f"is {rslora_text!r}, not true or false")
    targets = None
    if "targets" in meta:
        try:
            targets = json.loads(meta["targets"])
        except (ValueError, RecursionError):
            targets = None
        if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
            raise bad("targets", f"is {meta['targets'][:80]!r}, not a JSON list of layer names")
    return int(r_text), alpha, rslora_text == "true", targets
