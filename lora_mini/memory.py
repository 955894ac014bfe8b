"""Where the memory of one training step goes: weights, gradients, optimizer state, activations.

:func:`account_training_step` counts bytes from the tensors themselves (each storage
once). :func:`account_peak` adds the temporaries alive at the step's worst moment, so its
total is the step's peak. :func:`measure_peak_rss` runs real training steps in a fresh Python
process (its body: ``lora_mini.memory_child``) and reports how much its resident memory rose, as a cross-check
of the accounting.

Why a measured process peak can differ from the tensors it holds (and how we pin it down):

- glibc's malloc serves big blocks with mmap and returns them when freed, but after the
  first such free it raises its mmap threshold (up to 32 MiB), so later blocks come from
  the heap, which keeps freed memory for reuse: RSS then stays above the live tensors (by
  15-70% in the benchmark's runs). ``mmap_threshold=64 * 1024`` fixes the threshold in the
  measuring process (``MALLOC_MMAP_THRESHOLD_``), so freed blocks leave RSS at once.
- memory freed by a warm-up in the same process can be reused without RSS rising; with
  the threshold fixed, the warm-up's blocks are gone before the baseline is taken.
- backward's temporaries (gradients of activations in flight) are none of the four kinds;
  :func:`account_peak` counts them, :func:`account_training_step` does not.
"""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass, replace
from typing import Iterable, Sequence

import torch
import torch.nn as nn

from .model import GPTConfig
from .tasks import Batch
from .train import optimizer_step


@dataclass(frozen=True)
class MemoryReport:
    """Bytes alive for one training step, by kind."""

    weights: int  # parameters and buffers
    gradients: int  # .grad of the trainable parameters
    optimizer: int  # AdamW's exp_avg, exp_avg_sq and step
    activations: int  # tensors autograd saved during forward for use in backward
    temporaries: int = 0  # anything else alive at the step's peak (account_peak); 0 from account_training_step

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer + self.activations + self.temporaries

    def as_dict(self) -> dict[str, int]:
        return {**asdict(self), "total": self.total}


def _storage_bytes(tensors: Iterable[torch.Tensor], skip: frozenset[int] = frozenset()) -> int:
    """Bytes of the distinct storages behind ``tensors`` (views and shared tensors count once)."""
    seen: dict[int, int] = {}
    for t in tensors:
        s = t.untyped_storage()
        if s.data_ptr() not in skip:
            seen[s.data_ptr()] = s.nbytes()
    return sum(seen.values())


def account_training_step(model: nn.Module, batch: Batch, lr: float = 1e-3) -> MemoryReport:
    """Run one AdamW step on a copy of ``model`` with ``batch`` = (idx (B, T), targets (B, T)).

    Returns the bytes of each kind; the model passed in is not changed.
    """
    m = copy.deepcopy(model).train()
    idx, targets = (t.to(next(m.parameters()).device) for t in batch)
    weight_tensors = [*m.parameters(), *m.buffers()]
    weight_ptrs = frozenset(t.untyped_storage().data_ptr() for t in weight_tensors)
    saved: list[torch.Tensor] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        _, loss = m(idx, targets)
    activations = _storage_bytes(saved, skip=weight_ptrs)
    saved.clear()
    loss.backward()
    trainable = [p for p in m.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=lr)
    opt.step()
    state = [v for s in opt.state.values() for v in s.values() if isinstance(v, torch.Tensor)]
    return MemoryReport(
        weights=_storage_bytes(weight_tensors),
        gradients=_storage_bytes(p.grad for p in trainable if p.grad is not None),
        optimizer=_storage_bytes(state),
        activations=activations,
    )


def account_peak(model: nn.Module, batch: Batch, lr: float = 1e-3) -> MemoryReport:
    """The bytes alive at the worst moment of a training step on the CPU: the four kinds plus temporaries.

    ``batch`` = (idx (B, T), targets (B, T)). Weights, gradients, optimizer state and activations
    are counted as by :func:`account_training_step`. ``train.optimizer_step`` frees the previous
    step's gradients only after the forward, so at the end of a steady-state forward all four
    kinds are alive at once: their sum is one moment of the step, and the peak is that moment or
    a later one. ``temporaries`` is the rest of the peak: tensors of none of the four kinds
    (gradients of activations in flight during backward, the loss's buffers, AdamW's scratch).
    (A loop that cleared gradients before the forward would never hold all four kinds at once;
    its peak can be below their sum, and ``temporaries`` would then come out negative.)
    The peak is read from torch's own allocation events (``torch.profiler``, ``profile_memory``)
    over two steps on a copy of the model, the second at steady state; the model is not changed.
    """
    kinds = account_training_step(model, batch, lr)
    m = copy.deepcopy(model).train()
    trainable = [p for p in m.parameters() if p.requires_grad]
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as prof:
        idx, targets = (t.clone() for t in batch)  # allocated inside the window, like the activations
        opt = torch.optim.AdamW(trainable, lr=lr)
        for _ in range(2):
            optimizer_step(m, opt, idx, targets)
    peak = kinds.weights + _peak_allocated(prof)  # the weights were allocated before the window
    return replace(kinds, temporaries=peak - kinds.total)


def _peak_allocated(prof: torch.profiler.profile) -> int:
    """Most bytes torch's CPU allocator held at once during ``prof``, above what it held at the start."""
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    live = peak = 0
    for e in sorted(events, key=lambda e: e.start_ns()):
        live += e.nbytes()  # positive for an allocation, negative for a free
        peak = max(peak, live)
    return peak


def measure_peak_rss(
    targets: Sequence[str] = (),
    r: int = 4,
    alpha: float = 8,
    batch_size: int = 64,
    steps: int = 3,
    *,
    config: GPTConfig | None = None,
    mmap_threshold: int | None = None,
) -> int:
    """Peak resident memory added by building a model and training it (bytes), in a fresh process.

    With ``targets`` the run is LoRA on those layers; without, full fine-tuning. The model is
    the shipped base on "rotate" batches, or with ``config`` a randomly initialised
    ``ToyGPT(config)`` on random tokens (batch_size, config.block_size). ``mmap_threshold``
    (bytes) fixes glibc's mmap threshold in that process, so freed blocks leave RSS at once
    (see the module docstring); None keeps the allocator's default.
    Linux resets the peak after imports, so imports do not count; elsewhere they may.
    """
    spec = {"targets": list(targets), "r": r, "alpha": alpha, "batch_size": batch_size, "steps": steps}
    spec["config"] = None if config is None else asdict(config)
    env = dict(os.environ)
    if mmap_threshold is not None:
        env["MALLOC_MMAP_THRESHOLD_"] = str(mmap_threshold)  # glibc reads it at start-up
    command = [sys.executable, "-m", "lora_mini.memory_child", json.dumps(spec)]
    out = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    return int(out.stdout.strip().splitlines()[-1])
