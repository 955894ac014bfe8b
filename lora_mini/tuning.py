"""Choosing r, alpha, the learning rate and the targets (notebook 05): one short run, and a live widget.

A :class:`RunConfig` says what to train (LoRA or full fine-tuning, on which layers, at which r, alpha
and learning rate); :func:`run` trains it from the shipped base and returns a :class:`RunResult`
(loss per step, held-out exact match along the way, the size of the learned update).
``scripts/sweep_05.py`` runs the grids with it; the notebook's controls re-run it live through
:class:`LiveRun`, which shows a progress bar and redraws one plot in place.

    from lora_mini.tuning import RunConfig, run
    result = run(RunConfig(task="swap_pairs", steps=150, lr=1e-2, r=4, alpha=8))
    result.final  # held-out exact match at the last step
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Callable, Sequence

import torch
import torch.nn as nn

from .errors import LoraValueError
from .lora import LoRALinear, count_parameters, inject_lora
from .lora import lora_layers as named_lora_layers
from .pretrain import load_base
from .train import train

QV = ("q_proj", "v_proj")
ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "fc1", "fc2")
METHODS = ("lora", "full")


@dataclass(frozen=True)
class RunConfig:
    """One training run, as PEFT names its settings. ``method="full"`` trains every weight (r, alpha,
    targets ignored). ``init_scale`` multiplies LoRA's random A at the start (1.0: as inject_lora draws it)."""

    task: str = "swap_pairs"
    steps: int = 150
    lr: float = 1e-2
    method: str = "lora"
    target_modules: tuple[str, ...] = QV
    r: int = 4
    lora_alpha: float = 8
    use_rslora: bool = False
    init_scale: float = 1.0
    batch_size: int = 64
    eval_every: int = 25
    seed: int = 0


@dataclass
class RunResult:
    """What one run did: loss at every step, exact match at ``eval_steps``, ‖ΔW‖ at the end."""

    config: RunConfig
    loss: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)  # held-out exact match at each eval step
    delta_norm: float = 0.0  # sqrt of the sum of ‖ΔW‖_F² over the adapted layers (full: over all Linear weights)
    trainable: int = 0
    seconds: float = 0.0

    @property
    def final(self) -> float:
        """Held-out exact match after the last step."""
        return self.accuracy[-1]

    def to_dict(self) -> dict:
        """Plain JSON: the config's fields, then the measurements (``seconds`` left out: it is not reproducible)."""
        config = {**asdict(self.config), "target_modules": list(self.config.target_modules)}
        return {**config, "loss": self.loss, "eval_steps": self.eval_steps, "accuracy": self.accuracy,
                "delta_norm": self.delta_norm, "trainable": self.trainable}


def _check(cfg: RunConfig) -> None:
    if cfg.method not in METHODS:
        raise LoraValueError(f"method must be one of {METHODS}, got {cfg.method!r}")
    if not (isinstance(cfg.lr, (int, float)) and math.isfinite(cfg.lr) and cfg.lr > 0):
        raise LoraValueError(f"lr must be a positive finite number (e.g. lr=1e-2), got {cfg.lr!r}")
    if not (isinstance(cfg.steps, int) and cfg.steps >= 1):
        raise LoraValueError(f"steps must be a positive integer (e.g. steps=150), got {cfg.steps!r}")
    if not (isinstance(cfg.init_scale, (int, float)) and cfg.init_scale > 0):
        raise LoraValueError(f"init_scale must be a positive number (1.0 keeps A as drawn), got {cfg.init_scale!r}")


def build_model(cfg: RunConfig) -> nn.Module:
    """The shipped base on the CPU; for LoRA, adapters as ``cfg`` says, A drawn from ``cfg.seed``."""
    _check(cfg)
    torch.manual_seed(cfg.seed)
    model = load_base().cpu()
    if cfg.method == "lora":
        inject_lora(model, list(cfg.target_modules), r=cfg.r, alpha=cfg.lora_alpha, use_rslora=cfg.use_rslora)
        with torch.no_grad():
            for layer in lora_layers(model):
                layer.lora_A.mul_(cfg.init_scale)
    return model


def lora_layers(model: nn.Module) -> list[LoRALinear]:
    """The model's LoRA layers, as a list (``lora_mini.lora.lora_layers`` gives them by name)."""
    return list(named_lora_layers(model).values())


@torch.no_grad()
def update_norm(model: nn.Module, base: nn.Module | None = None) -> float:
    """‖ΔW‖_F over all adapted layers together: sqrt(Σ ‖scaling · B A‖²). With ``base`` given (full
    fine-tuning), the change of every nn.Linear weight from the same module of ``base`` instead."""
    if base is None:
        return math.sqrt(sum(layer.delta_weight().pow(2).sum().item() for layer in lora_layers(model)))
    before = {n: m.weight for n, m in base.named_modules() if isinstance(m, nn.Linear)}
    after = {n: m.weight for n, m in model.named_modules() if isinstance(m, nn.Linear)}
    return math.sqrt(sum((after[n] - w).pow(2).sum().item() for n, w in before.items()))


def run(cfg: RunConfig, on_step: Callable[[int], None] | None = None) -> RunResult:
    """Train ``cfg`` from the shipped base on ``cfg.task``; ``on_step(step)`` runs after every step."""
    model = build_model(cfg)
    t0 = time.perf_counter()
    hist = train(model, cfg.task, steps=cfg.steps, lr=cfg.lr, batch_size=cfg.batch_size, seed=cfg.seed,
                 eval_tasks=[cfg.task], eval_every=cfg.eval_every, progress=False,
                 callback=None if on_step is None else lambda step, _model: on_step(step))
    seconds = time.perf_counter() - t0
    model.cpu()
    base = load_base().cpu() if cfg.method == "full" else None
    return RunResult(config=cfg, loss=hist.loss, eval_steps=hist.eval_steps, accuracy=hist.accuracy[cfg.task],
                     delta_norm=update_norm(model, base), trainable=count_parameters(model).trainable,
                     seconds=seconds)


def good_range(lrs: Sequence[float], accuracies: Sequence[float], threshold: float = 0.9) -> tuple[float, float] | None:
    """(lowest, highest) learning rate whose final exact match reached ``threshold``; None if none did."""
    good = [lr for lr, acc in zip(lrs, accuracies) if acc >= threshold]
    return (min(good), max(good)) if good else None


def steps_to(result: RunResult, threshold: float = 0.95) -> int | None:
    """The first evaluated step at which exact match reached ``threshold``, or None."""
    return next((s for s, a in zip(result.eval_steps, result.accuracy) if a >= threshold), None)


def equivalent_lr_factor(alpha_factor: float, init_factor: float, candidates: Sequence[float] = (1, 2, 4, 16),
                         steps: int = 5) -> float:
    """Which learning-rate factor, with A's initialisation x ``init_factor``, reproduces a run whose alpha is
    x ``alpha_factor`` (notebook 05, section 2): the candidate whose losses come closest, from short runs."""
    ref = run(RunConfig(task="rotate", steps=steps, lr=5e-3, lora_alpha=8 * alpha_factor))

    def gap(k: float) -> float:
        other = run(RunConfig(task="rotate", steps=steps, lr=5e-3 * k, lora_alpha=8, init_scale=init_factor))
        return max(abs(a - b) for a, b in zip(ref.loss, other.loss))

    return min(candidates, key=gap)


# ---------------------------------------------------------------------------
# The live widget: controls -> a RunConfig -> a training run -> one plot, redrawn in place
# ---------------------------------------------------------------------------


class LiveRun:
    """Controls that re-run a real training whenever one changes.

    ``controls`` maps a keyword to an ipywidget; ``make_config(**values)`` turns their values into a
    RunConfig; ``draw(result)`` plots a finished run (it makes its own figure and calls plt.show()).
    While training, a progress bar counts the steps; the plot and its one-line summary are then
    replaced in the same output area. ``widget`` is what to display; ``results`` keeps every run.
    """

    def __init__(self, controls: dict, make_config: Callable[..., RunConfig],
                 draw: Callable[[RunResult], None], describe: Callable[[RunResult], str] | None = None) -> None:
        import ipywidgets as W

        self.controls, self.make_config, self.draw = controls, make_config, draw
        self.describe = describe or (lambda r: f"exact match {r.final:.1%} after {r.config.steps} steps")
        self.progress = W.IntProgress(value=0, min=0, max=1, description="training", bar_style="info")
        self.output = W.Output()
        self.results: list[RunResult] = []
        for control in controls.values():
            control.observe(lambda _change: self.update(), names="value")
        self.widget = W.VBox([W.HBox(list(controls.values())), self.progress, self.output])
        self.update()

    def update(self) -> RunResult:
        """Train with the controls' current values, then redraw the plot and the summary."""
        from IPython.display import clear_output

        import matplotlib.pyplot as plt

        cfg = self.make_config(**{k: c.value for k, c in self.controls.items()})
        self.progress.max, self.progress.value, self.progress.bar_style = cfg.steps, 0, "info"
        every = max(1, cfg.steps // 20)
        result = run(cfg, on_step=lambda step: step % every == 0 and setattr(self.progress, "value", step))
        self.progress.value, self.progress.bar_style = cfg.steps, "success"
        self.results.append(result)
        with self.output:
            clear_output(wait=True)
            self.draw(result)
            print(f"{self.describe(result)}  ({result.seconds:.1f} s)")
        plt.close("all")
        return result


def with_lr(cfg: RunConfig, lr: float) -> RunConfig:
    """The same run at another learning rate."""
    return replace(cfg, lr=lr)
