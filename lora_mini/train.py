"""One training loop for full fine-tuning and LoRA alike: it trains whatever requires grad."""
from __future__ import annotations

import copy
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from tqdm.auto import tqdm

from . import checks
from .errors import LoraValueError
from .tasks import Batch, exact_match, make_batch


@dataclass
class History:
    """What a training run did, for plotting."""

    loss: list[float] = field(default_factory=list)  # training loss at every step
    eval_steps: list[int] = field(default_factory=list)  # steps at which accuracy was measured
    accuracy: dict[str, list[float]] = field(default_factory=dict)  # task -> exact match per eval step
    seconds: float = 0.0  # wall time of the optimisation steps, evaluations excluded


def default_device() -> torch.device:
    """CUDA when available, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def train(
    model: torch.nn.Module,
    data: str | Sequence[str] | Batch,
    steps: int,
    lr: float = 1e-3,
    batch_size: int = 64,
    weight_decay: float = 0.0,
    seed: int = 0,
    eval_tasks: Sequence[str] = (),
    eval_every: int = 0,
    stop_at: float | None = None,
    callback: Callable[[int, torch.nn.Module], None] | None = None,
    progress: bool = True,
    *,
    param_groups: Sequence[dict] | None = None,
) -> History:
    """Train the parameters of ``model`` that require grad with AdamW.

    ``data`` is a task name or a list of them (a fresh random batch every step), or a
    fixed dataset ``(idx (N, T), targets (N, T))`` from which batches are sampled.
    Every ``eval_every`` steps (and at the end) exact match on ``eval_tasks`` is recorded;
    with ``stop_at`` set, training stops early once every eval task reaches that accuracy.
    ``callback(step, model)``, if given, runs after every step (e.g. to take snapshots).
    ``param_groups``, if given, replaces AdamW's single group: a list of dicts, each with
    "params" and optionally its own "lr", together holding exactly the parameters that
    require grad, e.g. ``loraplus_param_groups(model, lr)`` for LoRA+ (B at ratio × lr).
    """
    _check_arguments(model, data, steps, lr, batch_size, weight_decay, seed, eval_tasks, eval_every, stop_at,
                     callback, progress)  # every argument, before the first step changes anything
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise LoraValueError("no parameter requires grad: nothing to train (did you freeze everything?)")
    groups = [{"params": params}] if param_groups is None else _check_groups(params, param_groups)
    eval_tasks = checks.tasks("eval_tasks", eval_tasks, allow_empty=True)
    device = default_device()
    model.to(device).train()
    opt = torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay)
    g = torch.Generator().manual_seed(seed)
    hist = History(accuracy={t: [] for t in eval_tasks})
    for step in tqdm(range(1, steps + 1), disable=not progress, desc="training"):
        t0 = time.perf_counter()
        idx, targets = _next_batch(data, batch_size, g)
        loss = optimizer_step(model, opt, idx.to(device), targets.to(device))
        hist.loss.append(loss.item())
        hist.seconds += time.perf_counter() - t0
        if callback is not None:
            callback(step, model)
        if eval_tasks and (step == steps or (eval_every and step % eval_every == 0)):
            hist.eval_steps.append(step)
            for t in eval_tasks:
                hist.accuracy[t].append(exact_match(model, t))
            if stop_at is not None and min(a[-1] for a in hist.accuracy.values()) >= stop_at:
                break
    return hist


def _check_arguments(model, data, steps, lr, batch_size, weight_decay, seed, eval_tasks, eval_every, stop_at,
                     callback, progress) -> None:
    """Every argument of train(), checked before anything changes; raises an error from lora_mini.errors."""
    from .lora import lora_layers

    checks.model(model, "train")
    checks.not_serving(model, "train")
    layers = list(lora_layers(model).values())
    checks.unmerged(layers, "train")  # a merged layer has no B·A path for gradients to reach
    checks.enabled(model, "train")  # nor has a disabled one
    if isinstance(data, tuple) and data and isinstance(data[0], torch.Tensor):
        config = getattr(model, "config", None)
        checks.dataset(data, getattr(config, "vocab_size", 2**62), getattr(config, "block_size", 2**62))
    else:
        checks.tasks("data", data)
    checks.integer("steps", steps, 1, "steps=300")
    checks.number("lr", lr, "lr=1e-2")
    checks.integer("batch_size", batch_size, 1, "batch_size=64", hi=2**16)
    checks.number("weight_decay", weight_decay, "weight_decay=0.0", lo=0.0, lo_open=False)
    checks.integer("seed", seed, 0, "seed=0", hi=2**63 - 1)
    checks.tasks("eval_tasks", eval_tasks, allow_empty=True)
    checks.integer("eval_every", eval_every, 0, "eval_every=50 (0: only at the end)")
    if stop_at is not None:
        checks.number("stop_at", stop_at, "stop_at=0.95", lo=0.0, hi=1.0, lo_open=False, hi_open=False)
    checks.callback(callback)
    checks.flag("progress", progress)


def _check_groups(params: list[torch.nn.Parameter], param_groups: Sequence[dict]) -> list[dict]:
    """The groups as AdamW takes them (fresh dicts, "params" as lists); a ValueError if they do not hold
    exactly ``params``, the trainable parameters, each once."""
    if not isinstance(param_groups, (list, tuple)) or not all(isinstance(g, dict) and "params" in g for g in param_groups):
        raise LoraValueError("param_groups must be a list of dicts with 'params', e.g. loraplus_param_groups(model, lr)")
    for g in param_groups:
        if "lr" in g:
            checks.number("the 'lr' of a param group", g["lr"], "lr=1e-3")
    groups = [{**g, "params": [g["params"]] if isinstance(g["params"], torch.Tensor) else list(g["params"])}
              for g in param_groups]
    given = [id(p) for g in groups for p in g["params"]]
    if len(given) != len(set(given)) or set(given) != {id(p) for p in params}:
        raise LoraValueError(
            "param_groups must hold every parameter that requires grad exactly once, and nothing else; "
            "build them from this model after inject_lora, e.g. loraplus_param_groups(model, lr)"
        )
    return groups


def optimizer_step(
    model: torch.nn.Module, opt: torch.optim.Optimizer, idx: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """One training step on idx (B, T) and targets (B, T): forward, backward, optimizer; returns the loss."""
    _, loss = model(idx, targets)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss


def _next_batch(data: str | Sequence[str] | Batch, batch_size: int, g: torch.Generator) -> Batch:
    if isinstance(data, tuple) and isinstance(data[0], torch.Tensor):
        rows = torch.randint(0, len(data[0]), (batch_size,), generator=g)
        return data[0][rows], data[1][rows]
    return make_batch(data, batch_size, g)


def evaluate(model: torch.nn.Module, tasks: str | Sequence[str]) -> dict[str, float]:
    """Held-out exact match of ``model`` on each task: {task: accuracy in [0, 1]}."""
    checks.model(model, "evaluate")
    checks.not_serving(model, "evaluate")  # its 512-row eval batch can't match mixed_adapters' `which`
    tasks = checks.tasks("tasks", tasks)
    return {t: exact_match(model, t) for t in tasks}


def step_seconds(model: torch.nn.Module, batch: Batch, lr: float = 1e-3, repeats: int = 10) -> float:
    """Median wall time of one training step (forward, backward, AdamW) on ``batch``.

    Runs on a copy of ``model`` after two warm-up steps; the model passed in is not changed.
    """
    m = copy.deepcopy(model).train()
    device = next(m.parameters()).device
    idx, targets = (t.to(device) for t in batch)
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=lr)
    times = []
    for i in range(repeats + 2):
        t0 = time.perf_counter()
        optimizer_step(m, opt, idx, targets)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)
