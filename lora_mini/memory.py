"""Where the memory of one training step goes: weights, gradients, optimizer state, activations.

:func:`account_training_step` counts bytes from the tensors themselves (each storage
once). :func:`measure_peak_rss` runs real training steps in a fresh Python process and
reports how much its resident memory rose, as a cross-check of the accounting.
"""
from __future__ import annotations

import copy
import json
import subprocess
import sys
from dataclasses import asdict, dataclass
from typing import Iterable, Sequence

import torch
import torch.nn as nn

from .tasks import Batch


@dataclass(frozen=True)
class MemoryReport:
    """Bytes alive for one training step, by kind."""

    weights: int  # parameters and buffers
    gradients: int  # .grad of the trainable parameters
    optimizer: int  # AdamW's exp_avg, exp_avg_sq and step
    activations: int  # tensors autograd saved during forward for use in backward

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer + self.activations

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


def measure_peak_rss(
    targets: Sequence[str] = (), r: int = 4, alpha: float = 8, batch_size: int = 64, steps: int = 3
) -> int:
    """Peak resident memory added by loading the base and training it (bytes), in a fresh process.

    With ``targets`` the run is LoRA on those layers; without, full fine-tuning.
    Linux resets the peak after imports, so imports do not count; elsewhere they may.
    """
    args = json.dumps({"targets": list(targets), "r": r, "alpha": alpha, "batch_size": batch_size, "steps": steps})
    out = subprocess.run(
        [sys.executable, "-m", "lora_mini.memory", args], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip().splitlines()[-1])


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field))


def _train_steps(spec: dict, batch_size: int, steps: int) -> None:
    from .lora import inject_lora
    from .pretrain import load_base
    from .tasks import make_batch
    from .train import optimizer_step

    model = load_base().cpu().train()
    if spec["targets"]:
        inject_lora(model, spec["targets"], r=spec["r"], alpha=spec["alpha"])
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        optimizer_step(model, opt, *make_batch("rotate", batch_size, g))


def _child(spec: dict) -> int:
    """Body of the measuring process: warm up, take a baseline, train, read the peak."""
    import gc
    import resource

    torch.set_num_threads(1)
    _train_steps(spec, batch_size=1, steps=1)  # page in torch's kernels so they are not counted
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the kernel's peak-RSS mark (VmHWM) to the current RSS
        before, peak = _rss_kib("VmRSS:"), lambda: _rss_kib("VmHWM:")
    except OSError:  # not Linux: ru_maxrss is a peak that includes the imports and warm-up
        unit = 1 if sys.platform == "darwin" else 1024  # macOS reports bytes, others KiB
        before, peak = 0, lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit // 1024
    _train_steps(spec, batch_size=spec["batch_size"], steps=spec["steps"])
    return (peak() - before) * 1024


if __name__ == "__main__":
    print(_child(json.loads(sys.argv[1])))
