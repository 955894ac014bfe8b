"""Adapters on disk: only the LoRA tensors, as safetensors, never pickle.

    save_adapter(model, "rotate.safetensors")   # A and B of every LoRA layer, r, alpha and targets in the metadata
    load_adapter(model, "rotate.safetensors")   # into a model whose LoraConfig and layers match

One writer (:func:`write_atomic`: a file appears whole or not at all) and one reader
(:func:`read_safetensors`: safetensors parses the header, no pickle, no Python JSON) serve
these files, PEFT's folders (:mod:`lora_mini.peft_bridge`) and mixed batches (:mod:`lora_mini.serving`).
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from . import checks
from .errors import AdapterFileError, LoraValueError
from .lora import LORA_PARAMETERS, LoraConfig, lora_layers

JSON_MAX_BYTES = 1_000_000  # an adapter_config.json is a few hundred bytes


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The LoRA tensors of ``model``: {"<layer>.lora_A": (r, in), "<layer>.lora_B": (out, r)}.

    DoRA layers add "<layer>.lora_magnitude_vector": (out,).
    """
    return {f"{name}.{part}": getattr(layer, part).detach()
            for name, layer in lora_layers(model).items() for part in LORA_PARAMETERS if hasattr(layer, part)}


def model_config(model: nn.Module) -> LoraConfig:
    """The one LoraConfig every LoRA layer of ``model`` shares (dropout aside); one file holds one."""
    checks.not_serving(model, "this call")
    configs = {layer.config for layer in lora_layers(model).values()}
    if not configs:
        raise LoraValueError("model has no LoRA layers; call inject_lora(model, targets, r, alpha) first")
    if len(configs) > 1:
        raise LoraValueError(f"LoRA layers use several settings {sorted(map(str, configs))}; one file holds one")
    return configs.pop()


def file_config(model: nn.Module) -> LoraConfig:
    """:func:`model_config`, for adapter files and mixed batches: they hold A and B only (no DoRA, no PiSSA)."""
    config = model_config(model)
    if config.use_dora:
        raise LoraValueError(
            "adapter files and mixed_adapters hold A and B only, not DoRA's magnitude vectors; "
            "save a DoRA adapter with export_peft(model, directory) and load it with import_peft"
        )
    if config.init_lora_weights == "pissa":
        raise LoraValueError(
            "a PiSSA adapter only works on the residual base it was cut from, which no adapter file holds; "
            "save the whole model instead: save_file(model.state_dict(), path)"
        )
    return config


# ---------------------------------------------------------------------------
# Writing: every file of a save appears whole, or the old ones stay
# ---------------------------------------------------------------------------


def write_atomic(files: dict[Path, Callable[[str], None]]) -> None:
    """Run each ``write(tmp)`` into a temporary file beside its path, then rename them into place, in order.

    Nothing is renamed until every temporary is written. Old files after the first are removed before
    the first is renamed (a config that says "these weights" goes last), so a reader never finds a new
    file beside an old one; at worst, after a crash, the later ones are missing.
    """
    paths = list(files)
    for path in paths:
        if path.is_dir():
            raise AdapterFileError(f"{path} is a folder; pass a file name inside it, e.g. {path / 'adapter.safetensors'}")
        if not path.parent.is_dir():
            raise AdapterFileError(f"cannot write {path}: the folder {path.parent} does not exist; create it first")
    temps: list[str] = []
    try:
        for path, write in files.items():
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".lora-", suffix=".tmp")
            os.close(fd)
            temps.append(tmp)
            write(tmp)
        for path in paths[1:]:
            path.unlink(missing_ok=True)
        for tmp, path in zip(temps, paths):
            os.replace(tmp, path)
    except OSError as e:
        raise AdapterFileError(f"cannot write {paths[0]} ({e.strerror or e}); choose another file name or folder") from e
    finally:
        for tmp in temps:
            if os.path.exists(tmp):
                os.remove(tmp)


def save_adapter(model: nn.Module, path: str | os.PathLike) -> Path:
    """Write the LoRA tensors of ``model`` to ``path`` (safetensors), r, alpha and targets in the metadata.

    Plain LoRA and rsLoRA only; DoRA and PiSSA get an error that names the way out.
    """
    checks.model(model, "save_adapter")
    path = checks.path("path", path, "'rotate.safetensors'")
    config = file_config(model)
    checks.unmerged(list(lora_layers(model).values()), "save_adapter")
    targets = sorted({name.rpartition(".")[2] for name in lora_layers(model)})
    meta = {"format": "lora_mini", "r": str(config.r), "alpha": repr(float(config.alpha)),
            "use_rslora": json.dumps(config.use_rslora), "targets": json.dumps(targets)}
    tensors = {k: v.contiguous().cpu() for k, v in lora_state_dict(model).items()}
    write_atomic({path: lambda tmp: save_file(tensors, tmp, metadata=meta)})
    return path


# ---------------------------------------------------------------------------
# Reading: parse, then check every field and tensor before anything changes
# ---------------------------------------------------------------------------


def read_safetensors(path: Path, hint: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) of a safetensors file; anything unreadable is an AdapterFileError ending in ``hint``."""
    try:
        with safe_open(path, framework="pt") as f:
            return {key: f.get_tensor(key) for key in f.keys()}, f.metadata() or {}
    except (SafetensorError, ValueError, UnicodeDecodeError, OverflowError, MemoryError, OSError) as e:
        raise AdapterFileError(f"{path} is not a readable safetensors file ({e}); {hint}") from e


def read_json(file: Path) -> Any:
    """JSON from ``file``: any problem (unreadable, not JSON, absurdly nested or large) is an AdapterFileError."""
    try:
        if file.stat().st_size > JSON_MAX_BYTES:
            raise AdapterFileError(f"{file} is larger than {JSON_MAX_BYTES:,} bytes; it is not an adapter config")
        return json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError, OSError) as e:
        raise AdapterFileError(f"{file} is not valid JSON ({type(e).__name__}: {str(e)[:200]})") from e


def checked_tensor(where: str, key: str, tensor: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A tensor read from a file, as ``dtype``: floating, finite, and cast only where the cast is exact."""
    if not tensor.dtype.is_floating_point:
        raise AdapterFileError(f"{where}: {key} has dtype {tensor.dtype}; LoRA weights are floating point")
    if not bool(torch.isfinite(tensor).all()):
        raise AdapterFileError(f"{where}: {key} holds NaN or infinite values; the adapter is broken, train it again")
    cast = tensor.to(dtype)
    if cast.dtype != tensor.dtype and not torch.equal(cast.to(tensor.dtype), tensor):
        raise AdapterFileError(f"{where}: {key} is {tensor.dtype} and does not convert exactly to the model's "
                               f"{dtype}; save it as {dtype}")
    return cast


def file_meta(where: Path, meta: dict[str, str]) -> tuple[LoraConfig, list[str] | None]:
    """(LoraConfig, targets) from an adapter file's metadata, or an AdapterFileError naming the field."""

    def bad(field: str, why: str) -> AdapterFileError:
        return AdapterFileError(f"{where}: metadata field {field!r} {why}; save the adapter again with save_adapter()")

    if meta.get("format") != "lora_mini":
        raise AdapterFileError(f"{where} has no lora_mini metadata (r, alpha, targets); save it with save_adapter()")
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
    return LoraConfig(int(r_text), alpha, use_rslora=rslora_text == "true"), targets


def load_adapter(model: nn.Module, path: str | os.PathLike) -> None:
    """Copy the LoRA tensors saved at ``path`` into the LoRA layers of ``model`` (in place).

    The file must match the model exactly: same LoraConfig (rank, alpha, rsLoRA or not), layer names
    and shapes. On any mismatch nothing is changed and the error lists what differs.
    """
    checks.model(model, "load_adapter")
    path = checks.path("path", path, "'rotate.safetensors'")
    if not path.is_file():
        raise AdapterFileError(f"no adapter file at {path}; pass the path that save_adapter() wrote")
    tensors, meta = read_safetensors(path, "save one with save_adapter()")
    file, targets = file_meta(path, meta)
    config = file_config(model)
    if file != config:
        raise AdapterFileError(
            f"{path} holds an adapter with r={file.r}, alpha={file.alpha:g}, use_rslora={file.use_rslora} but the "
            f"model has r={config.r}, alpha={config.alpha:g}, use_rslora={config.use_rslora}; inject_lora into a "
            f"fresh base with targets={targets}, r={file.r}, alpha={file.alpha:g}, use_rslora={file.use_rslora}"
        )
    own = lora_state_dict(model)
    problems = [f"missing in file: {k}" for k in own if k not in tensors]
    problems += [f"not in model: {k}" for k in tensors if k not in own]
    problems += [f"shape of {k}: file {tuple(tensors[k].shape)}, model {tuple(v.shape)}"
                 for k, v in own.items() if k in tensors and tensors[k].shape != v.shape]
    if problems:
        raise AdapterFileError(f"{path} does not fit this model:\n  " + "\n  ".join(problems))
    checks.unmerged(list(lora_layers(model).values()), "load_adapter")
    values = {k: checked_tensor(str(path), k, tensors[k], v.dtype) for k, v in own.items()}
    with torch.no_grad():
        for k, v in own.items():
            v.copy_(values[k])
