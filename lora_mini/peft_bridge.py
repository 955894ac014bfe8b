"""The bridge to Hugging Face PEFT: write and read adapters in PEFT's own directory format.

A PEFT LoRA adapter is a directory with two files:

    adapter_config.json        {"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": [...], ...}
    adapter_model.safetensors  base_model.model.<layer>.lora_A.weight            (r, in)
                               base_model.model.<layer>.lora_B.weight            (out, r)
                               base_model.model.<layer>.lora_magnitude_vector    (out,)  DoRA only

``peft.PeftModel.from_pretrained(load_base(), directory)`` loads what :func:`export_peft`
writes, and :func:`import_peft` loads what PEFT's ``save_pretrained`` writes for the toy base.
Plain LoRA, rsLoRA and DoRA cross the bridge; PEFT itself is not needed here.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
import torch.nn as nn
from safetensors.torch import save_file

from . import checks
from .adapters import checked_tensor, lora_state_dict, model_config, read_json, read_safetensors, write_atomic
from .errors import AdapterFileError, LoraValueError
from .lora import LoraConfig, inject_lora, lora_layers
from .quant import QuantLinear

CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter_model.safetensors"
PREFIX = "base_model.model."  # PEFT's path from the PeftModel down to the wrapped model
SUFFIXES = {"lora_A": ".lora_A.weight", "lora_B": ".lora_B.weight", "lora_magnitude_vector": ".lora_magnitude_vector"}
UNSUPPORTED = (  # PEFT options that lora_mini does not have; an adapter that sets one is refused
    "rank_pattern", "alpha_pattern", "modules_to_save", "lora_bias", "fan_in_fan_out",
    "layer_replication", "trainable_token_indices", "target_parameters", "use_qalora", "use_bdlora",
)
INITS = (True, False, "gaussian")  # PEFT inits that leave the base weights alone


def _dropout(model: nn.Module) -> float:
    rates = {layer.config.dropout for layer in lora_layers(model).values()}
    if len(rates) > 1:
        raise LoraValueError(f"LoRA layers use several dropout rates {sorted(rates)}; a PEFT config holds one")
    return rates.pop()


def export_peft(model: nn.Module, directory: str | os.PathLike) -> Path:
    """Write the adapter of ``model`` as PEFT's adapter_config.json + adapter_model.safetensors.

    ``target_modules`` lists the qualified layer names, so PEFT adapts exactly these layers.
    Returns the directory. PiSSA adapters and merged layers are refused with a ValueError.
    All or nothing: both files are written under temporary names first; then the old config goes,
    the weights are renamed into place and the config last, so a reader never finds new weights
    beside an old config (at worst, after a crash, a folder without a config, which import_peft refuses).
    """
    checks.model(model, "export_peft")
    directory = checks.path("directory", directory, "'my-adapter'")
    config = model_config(model)  # raises for no LoRA, or layers with different configs
    if config.init_lora_weights == "pissa":
        raise LoraValueError(
            "a PiSSA adapter only works on the residual base it was cut from, and PEFT would load it onto the "
            "original base; export plain LoRA, rsLoRA or DoRA, or save the whole model (model.state_dict())"
        )
    layers = lora_layers(model)
    checks.unmerged(list(layers.values()), "export_peft")
    peft_config = {
        "peft_type": "LORA",
        "task_type": None,
        "base_model_name_or_path": None,
        "r": config.r,
        "lora_alpha": config.alpha,
        "lora_dropout": _dropout(model),
        "target_modules": list(layers),
        "bias": "none",
        "use_rslora": config.use_rslora,
        "use_dora": config.use_dora,
        "init_lora_weights": True,
        "fan_in_fan_out": False,
        "modules_to_save": None,
        "inference_mode": True,
    }
    tensors = {PREFIX + key.rpartition(".")[0] + SUFFIXES[key.rpartition(".")[2]]: t.contiguous().cpu()
               for key, t in lora_state_dict(model).items()}  # "<layer>.lora_A" -> PEFT's key
    _write_folder(directory, tensors, json.dumps(peft_config, indent=2) + "\n")
    return directory


def _write_folder(directory: Path, tensors: dict[str, torch.Tensor], config_text: str) -> None:
    """Both files or neither (adapters.write_atomic: the config goes last); a new folder is removed on failure."""
    if directory.exists() and not directory.is_dir():
        raise AdapterFileError(f"{directory} is a file; export_peft writes a folder, pass a folder name")
    created = not directory.exists()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        write_atomic({directory / WEIGHTS_NAME: lambda tmp: save_file(tensors, tmp, metadata={"format": "pt"}),
                      directory / CONFIG_NAME: lambda tmp: Path(tmp).write_text(config_text)})
    except OSError as e:
        raise AdapterFileError(f"cannot write the adapter into {directory} ({e}); choose another folder") from e
    finally:
        if created and directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()  # a failed export into a new folder leaves no empty folder behind


def _read_config(directory: Path) -> LoraConfig:
    """adapter_config.json as a LoraConfig, checked for the options lora_mini has; an error names any other."""
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        if not (directory / name).is_file():
            raise AdapterFileError(f"no {name} in {directory}; pass the directory that save_pretrained() wrote")
    config = read_json(directory / CONFIG_NAME)
    if not isinstance(config, dict) or config.get("peft_type") != "LORA":
        raise AdapterFileError(f"{directory} holds no LoRA adapter (peft_type must be 'LORA')")
    used = [key for key in UNSUPPORTED if config.get(key)]
    if config.get("bias", "none") != "none":
        used.append(f"bias={config['bias']!r}")
    init = config.get("init_lora_weights", True)
    if not isinstance(init, (bool, str)) or init not in INITS:
        used.append(f"init_lora_weights={config['init_lora_weights']!r} (it changes the base weights)")
    if used:
        raise AdapterFileError(f"{directory} uses PEFT options lora_mini does not have: {used}; train it without them")
    for key in ("use_rslora", "use_dora"):
        if not isinstance(config.get(key, False), bool):
            raise AdapterFileError(f"{directory / CONFIG_NAME}: {key} is {config[key]!r}, must be true or false")
    try:
        return LoraConfig(config.get("r"), config.get("lora_alpha"), config.get("lora_dropout") or 0.0,
                          config.get("use_rslora", False), config.get("use_dora", False))
    except (ValueError, TypeError) as e:
        raise AdapterFileError(f"{directory / CONFIG_NAME}: {e} (r, lora_alpha, lora_dropout as PEFT names them)") from None


def _split_keys(tensors: dict[str, torch.Tensor], directory: Path) -> dict[str, dict[str, torch.Tensor]]:
    """{layer name: {"lora_A": ..., "lora_B": ..., maybe "lora_magnitude_vector": ...}} from PEFT's keys."""
    layers: dict[str, dict[str, torch.Tensor]] = {}
    unknown = []
    for key, tensor in tensors.items():
        part = next((p for p, suffix in SUFFIXES.items() if key.startswith(PREFIX) and key.endswith(suffix)), None)
        if part is None:
            unknown.append(key)
            continue
        layers.setdefault(key[len(PREFIX) : -len(SUFFIXES[part])], {})[part] = tensor
    if unknown or not layers:
        raise AdapterFileError(f"{directory / WEIGHTS_NAME} holds tensors other than LoRA A, B, DoRA magnitudes: {unknown}")
    return layers


def _check_fits(model: nn.Module, layers: dict[str, dict[str, torch.Tensor]], r: int, use_dora: bool) -> None:
    """Every layer of the file exists in ``model`` as a Linear with matching shapes; else a ValueError."""
    modules = dict(model.named_modules())
    problems = []
    for name, parts in layers.items():
        module = modules.get(name)
        if not isinstance(module, (nn.Linear, QuantLinear)):
            problems.append(f"{name}: no nn.Linear of that name in the model")
            continue
        want = {"lora_A": (r, module.in_features), "lora_B": (module.out_features, r)}
        if use_dora:
            want["lora_magnitude_vector"] = (module.out_features,)
        got = {part: tuple(t.shape) for part, t in parts.items()}
        if got != want:
            problems.append(f"{name}: file has {got}, the model needs {want}")
    if problems:
        raise AdapterFileError("the PEFT adapter does not fit this model:\n  " + "\n  ".join(problems))


def import_peft(model: nn.Module, directory: str | os.PathLike) -> list[str]:
    """Load the PEFT LoRA adapter in ``directory`` into ``model``, a base without LoRA (e.g. ``load_base()``).

    The layers are those named in adapter_model.safetensors. Injects LoRALinear (or DoRALinear)
    layers with the config's r, lora_alpha, lora_dropout, use_rslora and use_dora, then copies
    the tensors in. Returns the adapted layer names.
    Anything that does not fit raises a ValueError before the model changes.
    """
    checks.model(model, "import_peft")
    directory = checks.path("directory", directory, "'my-adapter'")
    config = _read_config(directory)
    tensors, _ = read_safetensors(directory / WEIGHTS_NAME, "save the adapter again with save_pretrained()")
    checks.not_serving(model, "import_peft")
    if lora_layers(model):
        raise LoraValueError("import_peft injects the adapter itself; pass a base without LoRA layers, e.g. load_base()")
    layers = _split_keys(tensors, directory)
    _check_fits(model, layers, config.r, config.use_dora)
    modules = dict(model.named_modules())
    values = {  # every tensor checked (floating, finite, cast only where exact) before the model changes
        name: {part: checked_tensor(str(directory / WEIGHTS_NAME), PREFIX + name + SUFFIXES[part], t, modules[name].weight.dtype)
               for part, t in parts.items()}
        for name, parts in layers.items()
    }
    order = [n for n, _ in model.named_modules() if n in layers]  # model order
    names = inject_lora(model, order, config.r, config.alpha, config.dropout,
                        use_rslora=config.use_rslora, use_dora=config.use_dora)
    with torch.no_grad():
        for name in names:
            layer = model.get_submodule(name)
            for part, tensor in values[name].items():
                getattr(layer, part).copy_(tensor)
    return names
