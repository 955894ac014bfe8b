"""Pretrain the toy base model and ship it: ``python -m lora_mini.pretrain``.

Training is seeded and runs on one CPU thread, so the same command writes the same
weights every time. The checkpoint stores its GPTConfig and its accuracy per base
task in the safetensors metadata; :func:`load_base` reads both.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from . import checks
from .errors import AdapterFileError

from .model import GPTConfig, ToyGPT
from .tasks import BASE_TASKS, DOWNSTREAM_TASKS
from .train import default_device, evaluate, train

BASE_PATH = Path(__file__).parent / "data" / "base.safetensors"
BASE_CONFIG = GPTConfig()  # the defaults are the shipped base's shape
PRETRAIN_STEPS = 2000
PRETRAIN_LR = 3e-3
PRETRAIN_BATCH = 128
PRETRAIN_SEED = 0


def pretrain(
    steps: int = PRETRAIN_STEPS, config: GPTConfig = BASE_CONFIG, seed: int = PRETRAIN_SEED, progress: bool = True
) -> ToyGPT:
    """Train a fresh ToyGPT on BASE_TASKS from a fixed seed; returns it on the CPU."""
    torch.manual_seed(seed)
    model = ToyGPT(config)
    train(model, BASE_TASKS, steps=steps, lr=PRETRAIN_LR, batch_size=PRETRAIN_BATCH, seed=seed, progress=progress)
    return model.cpu().eval()


def save_base(model: ToyGPT, path: Path = BASE_PATH) -> dict[str, float]:
    """Write ``model`` with its config and base-task accuracy as metadata; returns the accuracy."""
    accuracy = evaluate(model, BASE_TASKS)
    meta = {"config": json.dumps(asdict(model.config)), "accuracy": json.dumps(accuracy)}
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, path, metadata=meta)
    return accuracy


def load_base(path: str | Path = BASE_PATH) -> ToyGPT:
    """The pretrained toy base that ships with lora_mini, in eval mode, on CUDA when available."""
    path = checks.path("path", path, "lora_mini.BASE_PATH")
    config = GPTConfig(**_base_meta(path, "config", dict))
    try:
        with torch.device("meta"):  # no memory, no random init: the file supplies every tensor
            model = ToyGPT(config)
        model.load_state_dict(load_file(path), assign=True)
    except (RuntimeError, TypeError, ValueError, SafetensorError) as e:
        raise AdapterFileError(f"{path}: its tensors do not fit its own config ({str(e)[:300]})") from e
    return model.to(default_device()).eval()


def base_accuracy(path: str | Path = BASE_PATH) -> dict[str, float]:
    """The per-task exact match recorded in the checkpoint when it was made."""
    return _base_meta(checks.path("path", path, "lora_mini.BASE_PATH"), "accuracy", dict)


def _base_meta(path: Path, key: str, kind: type) -> dict:
    """One JSON field of a base checkpoint's metadata; an AdapterFileError if the file is not a base."""
    fix = "load_base() takes a base checkpoint written by save_base(), not an adapter (use load_adapter for those)"
    try:
        with safe_open(path, framework="pt") as f:
            text = (f.metadata() or {}).get(key)
        value = None if text is None else json.loads(text)
    except (SafetensorError, OSError, ValueError, RecursionError) as e:
        raise AdapterFileError(f"{path} is not a readable safetensors file ({str(e)[:200]}); {fix}") from e
    if not isinstance(value, kind):
        raise AdapterFileError(f"{path} has no {key!r} in its metadata: it is not a base checkpoint; {fix}")
    if key == "config" and set(value) - set(asdict(BASE_CONFIG)):
        raise AdapterFileError(f"{path}: unknown config fields {sorted(set(value) - set(asdict(BASE_CONFIG)))}; {fix}")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=PRETRAIN_STEPS)
    parser.add_argument("--out", type=Path, default=BASE_PATH)
    args = parser.parse_args()
    torch.set_num_threads(1)  # one thread: bit-for-bit reproducible on a CPU
    t0 = time.perf_counter()
    model = pretrain(args.steps)
    seconds = time.perf_counter() - t0
    accuracy = save_base(model, args.out)
    print(f"pretrained {args.steps} steps in {seconds:.1f} s -> {args.out} ({args.out.stat().st_size:,} bytes)")
    for task, acc in {**accuracy, **evaluate(model, DOWNSTREAM_TASKS)}.items():
        print(f"  {task:<11} exact match {acc:.3f}")


if __name__ == "__main__":
    main()
