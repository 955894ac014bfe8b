"""Does LoRA train faster, use less memory and add no inference latency, here? And is lora_mini as fast as PEFT?

    python -m lora_mini.bench                          # everything, about 4-5 minutes on 2 cores
    python -m lora_mini.bench --quick                  # a small run in under a minute: proves the command works
    python -m lora_mini.bench --json bench.json --chart docs/bench.png --threads 1

One run, one machine, five sections, each figure a ratio of two things measured side by side:

1. training step: LoRA vs full fine-tuning vs the floor (frozen forward + input-gradient backward)
2. peak training memory: the accounting (``memory.account_peak``) next to the measured process peak
3. inference latency: merged and unmerged LoRA vs the base model
4. peers: ``LoRALinear`` vs PEFT's and loralib's LoRA ``Linear``, forward + backward
5. the course: each notebook's wall time and kernel peak RSS on one CPU thread

Timing protocol: warm-up calls first, then ``repeats`` rounds; in each round every contender runs
once (a short call: a loop of calls lasting at least ``min_sample_s``), in an order rotated from
round to round. A time is the median over rounds. A ratio is the median over rounds of that
round's ratio, whose two parts ran seconds apart, so a busy neighbour slows both.
Predictions count matmul FLOPs only (:func:`matmul_flops`), 2 per multiply-add.

The allocator: glibc's malloc (Linux) returns the top of its heap to the OS whenever enough of it
is free, and the next training step page-faults it back in, thousands of faults per step, more
for one contender than another by the luck of where its blocks fall. So the training step is
timed twice: first with the allocator's defaults (reported, with page faults per step), then,
like every later timing, with freed memory kept for reuse (:func:`keep_freed_memory`, as the
jemalloc and tcmalloc allocators do); the targets are checked on the second.
``--default-malloc`` times everything with the defaults instead.
"""
from __future__ import annotations

import argparse
import copy
import ctypes
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn as nn

from .lora import LoRALinear, inject_lora, merge_lora
from .memory import account_peak, measure_peak_rss, random_batch
from .model import GPTConfig, ToyGPT
from .train import optimizer_step

MEDIUM_TOY = GPTConfig(block_size=64, n_layer=4, n_head=8, n_embd=512)  # 12.6 M parameters, random init
QUICK_TOY = GPTConfig(block_size=32, n_layer=2, n_head=4, n_embd=128)
NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}  # Binder's one CPU
MMAP_THRESHOLD = 64 * 1024  # glibc: blocks over 64 KiB are mmap-ed and returned when freed (see memory.py)
MiB = 2**20


@dataclass
class BenchConfig:
    """What to measure, and how often."""

    model: GPTConfig = field(default_factory=partial(copy.copy, MEDIUM_TOY))
    batch_size: int = 32  # training step and its FLOPs
    targets: tuple[str, ...] = ("q_proj", "v_proj")
    r: int = 8
    alpha: float = 16
    memory_batch_size: int = 8
    inference_batch_size: int = 1  # one request of block_size tokens
    peer_points: tuple[tuple[int, int, int, int], ...] = (  # (in, out, r, tokens)
        (96, 96, 4, 1088),  # the course's base: q_proj at batch 64
        (512, 512, 8, 2048),  # the medium toy: q_proj at batch 32
        (512, 2048, 8, 2048),  # the medium toy: fc1
        (2048, 2048, 16, 512),
    )
    notebooks: tuple[str, ...] | None = None  # None: every notebook; () none
    warmup: int = 2
    repeats: int = 7
    min_sample_s: float = 0.2  # shorter calls are repeated in a loop that lasts at least this long


QUICK = BenchConfig(  # small sizes and one short notebook: proves the command works, in under a minute
    model=QUICK_TOY,
    batch_size=8,
    peer_points=((128, 128, 4, 256),),
    notebooks=("12_review.ipynb",),
    warmup=1,
    repeats=3,
    min_sample_s=0.02,
)


@dataclass
class Check:
    """One row of the summary: a measured figure against its target, and the FLOP prediction if there is one."""

    name: str
    measured: float
    target: float | None  # the figure must be <= target; None: reported, no target
    predicted: float | None = None
    at_least: float | None = None  # and >= at_least, for "agree within" targets
    unit: str = "x"

    @property
    def passed(self) -> bool | None:
        if self.target is None:
            return None
        return self.measured <= self.target and (self.at_least is None or self.measured >= self.at_least)

    def as_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}


# ---------------------------------------------------------------------------
# Timing: interleaved rounds, medians
# ---------------------------------------------------------------------------


@dataclass
class Samples:
    """Seconds per call and minor page faults per call of each contender, one entry per round."""

    seconds: dict[str, list[float]]
    faults: dict[str, list[float]]

    def median(self, name: str) -> float:
        return statistics.median(self.seconds[name])

    def ratio(self, a: str, b: str) -> float:
        """Median over rounds of seconds[a] / seconds[b]."""
        return statistics.median(x / y for x, y in zip(self.seconds[a], self.seconds[b]))


def interleaved(contenders: dict[str, Callable[[], object]], cfg: BenchConfig) -> Samples:
    """Time each contender in ``cfg.repeats`` rounds after ``cfg.warmup`` calls each, rotating the order."""
    names = list(contenders)
    for _ in range(cfg.warmup):
        for fn in contenders.values():
            fn()
    inner = _calls_per_sample(contenders[names[0]], cfg.min_sample_s)
    out = Samples({n: [] for n in names}, {n: [] for n in names})
    for i in range(cfg.repeats):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            faults, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
            for _ in range(inner):
                contenders[name]()
            out.seconds[name].append((time.perf_counter() - t0) / inner)
            out.faults[name].append((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / inner)
    return out


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed memory for reuse, as jemalloc and tcmalloc do; False where there is no glibc.

    By default glibc returns the top of its heap to the OS once more than M_TRIM_THRESHOLD is free
    there (a threshold it raises as the program frees large blocks), and serves blocks above
    M_MMAP_THRESHOLD with fresh mmaps: both mean pages that the next step must fault in again.
    Fixing the trim threshold at 1 GiB and the mmap threshold at its 32 MiB maximum stops that.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (e.g. musl)
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # from <malloc.h>
    return libc.mallopt(M_TRIM_THRESHOLD, 2**30) == 1 and libc.mallopt(M_MMAP_THRESHOLD, 32 * 2**20) == 1


def _calls_per_sample(fn: Callable[[], object], min_seconds: float) -> int:
    t0 = time.perf_counter()
    fn()
    return max(1, math.ceil(min_seconds / max(time.perf_counter() - t0, 1e-9)))


# ---------------------------------------------------------------------------
# FLOP predictions
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Flops:
    """Matmul FLOPs of one step: forward, backward to inputs, backward to weights."""

    forward: int
    input_grad: int  # products that pass a gradient down to an activation
    weight_grad: int  # products that make a parameter's gradient

    @property
    def total(self) -> int:
        return self.forward + self.input_grad + self.weight_grad


def matmul_flops(
    config: GPTConfig, batch_size: int, seq_len: int, mode: str, targets: Sequence[str] = (), r: int = 0
) -> Flops:
    """Matmul FLOPs of ToyGPT(config) on (batch_size, seq_len) tokens in ``mode``:

    "full" (every weight trains), "floor" (frozen; the gradient starts at the embedding output)
    or "lora" (rank-r adapters on ``targets``, the rest frozen). A Linear on N tokens costs
    2·N·in·out forward, as much again for its input gradient when its input needs one, and as
    much again for its weight gradient when it trains. Attention costs 4·B·T²·C forward (Q Kᵀ and
    P V, dense: the causal mask is ignored) and twice that backward (both operands of each product).
    A LoRA layer adds A (in -> r) and B (r -> out) by the same rules; both train.
    For inference, read ``.forward``.
    """
    B, T, C = batch_size, seq_len, config.n_embd
    N = B * T
    fwd = in_grad = w_grad = 0
    grad_below = mode in ("full", "floor")  # does the residual stream need a gradient here?

    def linear(name: str, d_in: int, d_out: int, x_needs_grad: bool) -> bool:
        """Count one Linear; return whether its output needs a gradient."""
        nonlocal fwd, in_grad, w_grad
        lora = mode == "lora" and name in targets
        fa, fb, f = 2 * N * d_in * r, 2 * N * r * d_out, 2 * N * d_in * d_out  # A, B, W
        fwd += f + (fa + fb if lora else 0)
        in_grad += (f if x_needs_grad else 0) + (fb + (fa if x_needs_grad else 0) if lora else 0)
        w_grad += (f if mode == "full" else 0) + (fa + fb if lora else 0)
        return x_needs_grad or lora or mode == "full"

    for _ in range(config.n_layer):
        att_needs_grad = any([linear(n, C, C, grad_below) for n in ("q_proj", "k_proj", "v_proj")])
        fwd += 4 * B * T * T * C
        in_grad += 8 * B * T * T * C if att_needs_grad else 0
        grad_below = linear("o_proj", C, C, att_needs_grad) or grad_below
        grad_below = linear("fc2", 4 * C, C, linear("fc1", C, 4 * C, grad_below)) or grad_below
    linear("lm_head", C, config.vocab_size, grad_below)
    return Flops(fwd, in_grad, w_grad)


# ---------------------------------------------------------------------------
# 1. Training step: floor, LoRA, full fine-tuning
# ---------------------------------------------------------------------------


def floor_model(base: ToyGPT) -> ToyGPT:
    """A frozen copy of ``base`` whose backward computes input gradients only: the floor for LoRA.

    With W frozen, a LoRA step skips every weight-gradient product and nearly all optimizer work,
    but its backward must still carry the gradient down through every block to block 0's q_proj.
    The floor does that and no more: every parameter is frozen and the token-embedding output
    requires grad, so backward runs through all blocks, as far as the embeddings, computing input
    gradients and nothing else. It also computes block 0's q, k, v input gradients, which LoRA
    may skip (nothing below them trains); ``matmul_flops`` counts that head start.
    """
    floor = copy.deepcopy(base).train().requires_grad_(False)
    floor.tok_emb.register_forward_hook(_output_requires_grad)
    return floor


def _output_requires_grad(module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
    return output.requires_grad_()  # a frozen embedding's output is a leaf: backward stops here


def floor_step(model: ToyGPT, idx: torch.Tensor, targets: torch.Tensor) -> None:
    """Forward and input-gradient backward on idx (B, T), targets (B, T): no weight gradients, no optimizer."""
    _, loss = model(idx, targets)
    loss.backward()


def lora_copy(base: ToyGPT, cfg: BenchConfig) -> ToyGPT:
    """A copy of ``base`` with LoRA on ``cfg.targets``."""
    model = copy.deepcopy(base)
    inject_lora(model, list(cfg.targets), r=cfg.r, alpha=cfg.alpha)
    return model


def bench_training(cfg: BenchConfig, allocator: str = "") -> tuple[dict, list[Check]]:
    """Median step time of the floor, LoRA and full fine-tuning, with their matmul FLOPs.

    ``allocator``, if given, names the malloc settings in the checks and makes them reported only.
    """
    torch.manual_seed(0)
    base = ToyGPT(cfg.model)
    full, lora, floor = copy.deepcopy(base).train(), lora_copy(base, cfg).train(), floor_model(base)
    batch = random_batch(cfg.model, cfg.batch_size, torch.Generator().manual_seed(0))
    opt_full = torch.optim.AdamW(full.parameters(), lr=1e-3)
    opt_lora = torch.optim.AdamW([p for p in lora.parameters() if p.requires_grad], lr=1e-3)
    samples = interleaved(
        {
            "floor": partial(floor_step, floor, *batch),
            "lora": partial(optimizer_step, lora, opt_lora, *batch),
            "full": partial(optimizer_step, full, opt_full, *batch),
        },
        cfg,
    )
    flops = {m: matmul_flops(cfg.model, *batch[0].shape, m, cfg.targets, cfg.r).total for m in samples.seconds}
    suffix, targets = (f" ({allocator}, reported)", (None, None)) if allocator else ("", (1.03, 0.70))
    checks = [
        Check(f"training step: LoRA / {name}{suffix}", samples.ratio("lora", run), target, flops["lora"] / flops[run])
        for name, run, target in (("floor", "floor", targets[0]), ("full fine-tuning", "full", targets[1]))
    ]
    return _section(samples, flops), checks


def _section(samples: Samples, flops: dict[str, int]) -> dict:
    """Each contender's median seconds, predicted FLOPs, achieved FLOP rate and page faults per call."""
    return {
        name: {
            "seconds": samples.median(name),
            "samples": samples.seconds[name],
            "flops": flops[name],
            "gflop_per_s": flops[name] / samples.median(name) / 1e9,
            "page_faults": statistics.median(samples.faults[name]),
        }
        for name in samples.seconds
    }


# ---------------------------------------------------------------------------
# 2. Peak training memory: accounting vs measured process peak
# ---------------------------------------------------------------------------


def bench_memory(cfg: BenchConfig) -> tuple[dict, list[Check]]:
    """account_peak next to the RSS peak of a fresh process, for LoRA and full fine-tuning.

    The process runs with glibc's mmap threshold fixed (``MMAP_THRESHOLD``), so freed blocks leave
    its RSS at once; the peak with the allocator's default is recorded too, to show the difference.
    """
    batch = random_batch(cfg.model, cfg.memory_batch_size, torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    base = ToyGPT(cfg.model)
    out = {}
    for name, targets, model in (("lora", cfg.targets, lora_copy(base, cfg)), ("full", (), base)):
        report = account_peak(model, batch)
        measure = partial(measure_peak_rss, targets, cfg.r, cfg.alpha, cfg.memory_batch_size, config=cfg.model)
        out[name] = {
            "accounted": report.as_dict(),
            "measured_rss": measure(mmap_threshold=MMAP_THRESHOLD),
            "measured_rss_glibc_default": measure(),
        }
    peak = {name: out[name]["accounted"]["total"] for name in out}
    rss = {name: out[name]["measured_rss"] for name in out}
    what = f"peak memory, batch {cfg.memory_batch_size}: LoRA / full"
    checks = [
        Check(f"{what} (measured)", rss["lora"] / rss["full"], 0.45),
        Check(f"{what} (accounted)", peak["lora"] / peak["full"], 0.45),
        *(Check(f"memory {n}: measured / accounted", rss[n] / peak[n], 1.15, at_least=0.85) for n in out),
    ]
    return out, checks


# ---------------------------------------------------------------------------
# 3. Inference latency: base, merged LoRA, unmerged LoRA
# ---------------------------------------------------------------------------


def bench_inference(cfg: BenchConfig) -> tuple[dict, list[Check]]:
    """Median forward time of the base, the merged and the unmerged LoRA model (no grad)."""
    torch.manual_seed(0)
    base = ToyGPT(cfg.model).eval()
    unmerged = lora_copy(base, cfg).eval()
    for layer in unmerged.modules():
        if isinstance(layer, LoRALinear):
            nn.init.normal_(layer.lora_B, std=0.02)  # a trained-looking adapter: ΔW != 0
    merged = copy.deepcopy(unmerged)
    merge_lora(merged)
    idx, _ = random_batch(cfg.model, cfg.inference_batch_size, torch.Generator().manual_seed(0))
    with torch.inference_mode():
        max_diff = (merged(idx)[0] - unmerged(idx)[0]).abs().max().item()
        models = {"base": base, "merged": merged, "unmerged": unmerged}
        samples = interleaved({name: partial(model, idx) for name, model in models.items()}, cfg)
    f = {m: matmul_flops(cfg.model, *idx.shape, m, cfg.targets, cfg.r).forward for m in ("floor", "lora")}
    flops = {"base": f["floor"], "merged": f["floor"], "unmerged": f["lora"]}
    predicted = flops["unmerged"] / flops["base"]
    checks = [
        Check("inference: merged LoRA / base", samples.ratio("merged", "base"), 1.02, 1.0),
        Check("inference: unmerged LoRA / base (reported)", samples.ratio("unmerged", "base"), None, predicted),
    ]
    return {**_section(samples, flops), "merged_vs_unmerged_max_abs_diff": max_diff}, checks


# ---------------------------------------------------------------------------
# 4. Peers: lora_mini vs PEFT vs loralib, one layer forward + backward
# ---------------------------------------------------------------------------


def peer_layers(d_in: int, d_out: int, r: int) -> dict[str, nn.Module]:
    """lora_mini's, PEFT's and loralib's LoRA Linear around one frozen (out, in) weight and bias, same A and B."""
    import loralib
    from peft import LoraConfig
    from peft.tuners.lora.layer import Linear as PeftLinear

    linear = nn.Linear(d_in, d_out)
    ours = LoRALinear(copy.deepcopy(linear), r=r, alpha=2 * r)
    nn.init.normal_(ours.lora_B, std=0.02)  # non-zero B: the three must agree on a real update
    peft_layer = PeftLinear(
        copy.deepcopy(linear), adapter_name="default", config=LoraConfig(r=r, lora_alpha=2 * r), r=r, lora_alpha=2 * r
    )
    peft_layer.base_layer.requires_grad_(False)  # PeftModel freezes the base; this layer alone does not
    theirs = loralib.Linear(d_in, d_out, r=r, lora_alpha=2 * r)
    theirs.bias.requires_grad_(False)  # loralib leaves the bias trainable (mark_only_lora_as_trainable freezes it)
    with torch.no_grad():
        peft_layer.lora_A["default"].weight.copy_(ours.lora_A)
        peft_layer.lora_B["default"].weight.copy_(ours.lora_B)
        theirs.weight.copy_(linear.weight)
        theirs.bias.copy_(linear.bias)
        theirs.lora_A.copy_(ours.lora_A)
        theirs.lora_B.copy_(ours.lora_B)
    return {"lora_mini": ours, "peft": peft_layer, "loralib": theirs}


def forward_backward(layer: nn.Module, x: torch.Tensor, grad: torch.Tensor) -> None:
    """One forward on x (tokens, in) and backward of ``grad`` (tokens, out), gradients cleared first."""
    x.grad = None
    for p in layer.parameters():
        p.grad = None
    layer(x).backward(grad)


def bench_peers(cfg: BenchConfig) -> tuple[dict, list[Check]]:
    """Forward + backward time of the three LoRA Linears at each (in, out, r, tokens) point.

    The input requires grad, as it does for every LoRA layer above the first, so backward
    computes the input gradient and the gradients of A and B (W and the bias are frozen).
    """
    try:
        import loralib  # noqa: F401
        import peft  # noqa: F401
    except ImportError:
        print("peers skipped: PEFT or loralib is not installed (pip install -r requirements-dev.txt)", flush=True)
        return {}, []
    points, checks = [], []
    for d_in, d_out, r, tokens in cfg.peer_points:
        torch.manual_seed(0)
        layers = peer_layers(d_in, d_out, r)
        x, grad = torch.randn(tokens, d_in, requires_grad=True), torch.randn(tokens, d_out)
        outs = [layer(x) for layer in layers.values()]
        if not all(torch.allclose(outs[0], o, atol=1e-5) for o in outs):
            raise RuntimeError(f"the three LoRA layers disagree at {(d_in, d_out, r, tokens)}")
        samples = interleaved({n: partial(forward_backward, layer, x, grad) for n, layer in layers.items()}, cfg)
        point = {"in": d_in, "out": d_out, "r": r, "tokens": tokens}
        point |= {f"{n}_seconds": samples.median(n) for n in layers}
        point |= {f"lora_mini/{peer}": samples.ratio("lora_mini", peer) for peer in ("peft", "loralib")}
        points.append(point)
        name = f"lora_mini / PEFT, (in, out, r, tokens) = {(d_in, d_out, r, tokens)}"
        checks.append(Check(name, point["lora_mini/peft"], 1.00))
    return {"points": points, "input_requires_grad": True}, checks


# ---------------------------------------------------------------------------
# 5. The course: every notebook on one thread
# ---------------------------------------------------------------------------


def find_notebooks(names: Sequence[str] | None = None) -> list[Path]:
    """The course's notebooks (solutions included), or those among them named in ``names``."""
    found = sorted(p for p in NOTEBOOKS.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    return found if names is None else [p for p in found if p.name in names]


def execute_notebook(path: Path, save: bool = False) -> dict:
    """Run a notebook top to bottom in a fresh kernel: wall time and the kernel's peak RSS.

    Call it in a child process: RUSAGE_CHILDREN is then the kernel alone. With ``save`` the
    outputs are written back into the notebook.
    """
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    t0 = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - t0
    if save:
        nbformat.write(nb, path)
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"notebook": path.name, "seconds": round(seconds, 1), "peak_rss_mb": round(peak_kib / 1024, 1)}


def time_notebook(path: Path) -> dict:
    """execute_notebook in a fresh process on one CPU thread; the notebook file is not changed."""
    out = subprocess.run(
        [sys.executable, "-m", "lora_mini.bench", "--notebook-child", str(path)],
        env={**os.environ, **ONE_THREAD},
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{path} failed:\n{out.stderr[-4000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return {**result, "notebook": str(path.relative_to(NOTEBOOKS))}


def bench_notebooks(cfg: BenchConfig) -> tuple[dict, list[Check]]:
    """Time every notebook of ``cfg.notebooks``; the slowest, the sum and the largest peak against their budgets."""
    paths = find_notebooks(cfg.notebooks)
    if not paths:
        print("notebooks skipped", flush=True)
        return {"notebooks": []}, []
    runs = []
    for path in paths:
        runs.append(time_notebook(path))
        print(f"  {runs[-1]['notebook']}: {runs[-1]['seconds']} s, {runs[-1]['peak_rss_mb']} MB", flush=True)
    which = "all" if cfg.notebooks is None else "only " + ", ".join(r["notebook"] for r in runs)
    checks = [
        Check(f"notebooks ({which}): slowest, 1 thread", max(r["seconds"] for r in runs), 45, unit="s"),
        Check(f"notebooks ({which}): all together", sum(r["seconds"] for r in runs), 360, unit="s"),
        Check(f"notebooks ({which}): largest kernel peak RSS", max(r["peak_rss_mb"] for r in runs), 1024, unit="MB"),
    ]
    return {"notebooks": runs}, checks


# ---------------------------------------------------------------------------
# The report: markdown tables, JSON, chart
# ---------------------------------------------------------------------------


def machine() -> dict:
    """Where the figures come from: CPU, cores, memory, Python, torch and its thread count."""
    cpu = platform.processor()
    if Path("/proc/cpuinfo").exists():
        names = [line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")]
        cpu = names[0] if names else cpu
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9 if hasattr(os, "sysconf") else None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": mem_gb and round(mem_gb, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def _fmt(value: float | None, unit: str = "x") -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if unit == "x" else f"{value:.1f} {unit}"


def summary_table(checks: list[Check]) -> str:
    """| figure | measured | predicted (matmul FLOPs) | target | result |"""
    rows = ["| figure | measured | predicted (matmul FLOPs) | target | result |", "|---|---:|---:|---:|---|"]
    for c in checks:
        if c.target is None:
            target, result = "reported", "—"
        else:
            target = f"≤ {_fmt(c.target, c.unit)}"
            if c.at_least is not None:
                target = f"{_fmt(c.at_least, c.unit)} – {_fmt(c.target, c.unit)}"
            result = "PASS" if c.passed else "MISS"
        rows.append(f"| {c.name} | {_fmt(c.measured, c.unit)} | {_fmt(c.predicted)} | {target} | {result} |")
    return "\n".join(rows)


def timing_table(section: dict, what: str) -> str:
    """| run | median time | predicted GFLOP | achieved GFLOP/s | page faults per call |"""
    rows = [f"| {what} | median time | predicted GFLOP | GFLOP/s | page faults per call |", "|---|---:|---:|---:|---:|"]
    for name, s in section.items():
        if isinstance(s, dict):
            rows.append(
                f"| {name} | {s['seconds'] * 1e3:.1f} ms | {s['flops'] / 1e9:.2f} | {s['gflop_per_s']:.1f} "
                f"| {s['page_faults']:.0f} |"
            )
    return "\n".join(rows)


def memory_table(memory: dict) -> str:
    """Accounting by kind next to the measured RSS peaks, in MiB."""
    kinds = ["weights", "gradients", "optimizer", "activations", "temporaries", "total"]
    columns = [*kinds[:-1], "accounted peak", "measured RSS peak", "measured / accounted", "RSS, glibc default"]
    head = "| run | " + " | ".join(columns) + " |"
    rows = [head, "|---" + "|---:" * 9 + "|"]
    for name, m in memory.items():
        a = m["accounted"]
        cells = [f"{a[k] / MiB:.1f}" for k in kinds]
        rss, default = m["measured_rss"], m["measured_rss_glibc_default"]
        cells += [f"{rss / MiB:.1f}", f"{rss / a['total']:.3f}", f"{default / MiB:.1f}"]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n\n(MiB; RSS measured in a fresh process with MALLOC_MMAP_THRESHOLD_=65536)"


def peers_table(peers: dict) -> str:
    """One row per (in, out, r, tokens) point: the three times and lora_mini's ratios."""
    head = "| in | out | r | tokens | lora_mini | PEFT | loralib | lora_mini / PEFT | lora_mini / loralib |"
    rows = [head, "|---:" * 9 + "|"]
    for p in peers.get("points", []):
        cells = [str(p[k]) for k in ("in", "out", "r", "tokens")]
        cells += [f"{p[f'{n}_seconds'] * 1e3:.3f} ms" for n in ("lora_mini", "peft", "loralib")]
        cells += [f"{p['lora_mini/peft']:.3f}", f"{p['lora_mini/loralib']:.3f}"]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def notebooks_table(notebooks: dict) -> str:
    """One row per notebook: time and kernel peak RSS on one thread, against 45 s and 1 GB."""
    rows = ["| notebook | time (1 thread) | kernel peak RSS | result (≤ 45 s, < 1 GB) |", "|---|---:|---:|---|"]
    for n in notebooks["notebooks"]:
        ok = n["seconds"] <= 45 and n["peak_rss_mb"] < 1024
        rows.append(f"| {n['notebook']} | {n['seconds']} s | {n['peak_rss_mb']} MB | {'PASS' if ok else 'MISS'} |")
    return "\n".join(rows)


def report(results: dict) -> str:
    """The whole markdown report of a run."""
    m, t = results["machine"], results["config"]
    head = (
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB; Python {m['python']}, torch {m['torch']}, "
        f"{m['torch_threads']} torch threads; {results['allocator']}. Wall time {results['wall_seconds']:.0f} s."
    )
    if results["quick"]:
        head += " Quick run: small sizes, not the figures of record."
    parts = [
        head,
        summary_table([Check(**{k: v for k, v in c.items() if k != "passed"}) for c in results["checks"]]),
        f"Training step (n_embd {t['model']['n_embd']}, {t['model']['n_layer']} layers, {t['model']['n_head']} heads, "
        f"sequence {t['model']['block_size']}, batch {t['batch_size']}; LoRA r = {t['r']} on "
        f"{', '.join(t['targets'])}; AdamW), {results['allocator']}:",
        timing_table(results["training"], "step"),
        f"Peak training memory (batch {t['memory_batch_size']}):",
        memory_table(results["memory"]),
        f"Inference (batch {t['inference_batch_size']}, {t['model']['block_size']} tokens, no grad):",
        timing_table(results["inference"], "model"),
    ]
    if "training_default_malloc" in results:
        parts[4:4] = ["The same, malloc defaults:", timing_table(results["training_default_malloc"], "step")]
    if results["peers"]:
        parts += ["Peers, one layer forward + backward (input requires grad):", peers_table(results["peers"])]
    if results["notebooks"]["notebooks"]:
        parts += ["The course, each notebook in a fresh kernel:", notebooks_table(results["notebooks"])]
    return "\n\n".join(parts)


def draw_chart(results: dict, path: Path) -> None:
    """One figure for the README: step time, peak memory, inference, peers, notebooks; the ratios in the titles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplot_mosaic([["train", "memory", "infer"], ["peers", "nb", "nb"]], figsize=(14, 7.5))
    ratio = {c["name"]: c["measured"] for c in results["checks"]}
    train = (ratio["training step: LoRA / floor"], ratio["training step: LoRA / full fine-tuning"])
    infer = (ratio["inference: merged LoRA / base"], ratio["inference: unmerged LoRA / base (reported)"])
    _bars(ax["train"], results["training"], f"training step (ms)\nLoRA/floor {train[0]:.3f}, LoRA/full {train[1]:.3f}")
    _bars(ax["infer"], results["inference"], f"inference (ms)\nmerged/base {infer[0]:.3f}, unmerged {infer[1]:.3f}")
    _memory_panel(ax["memory"], results["memory"], results["config"]["memory_batch_size"])
    _peers_panel(ax["peers"], results["peers"].get("points", []))
    runs = results["notebooks"]["notebooks"]
    ax["nb"].barh([r["notebook"] for r in runs][::-1], [r["seconds"] for r in runs][::-1], color="#1f77b4")
    ax["nb"].axvline(45, color="black", lw=0.8, ls="--")
    ax["nb"].set_title(f"notebooks, one thread (s; budget 45 s each): {sum(r['seconds'] for r in runs):.0f} s in all, "
                       f"largest peak {max((r['peak_rss_mb'] for r in runs), default=0):.0f} MB", fontsize=10)
    ax["nb"].tick_params(labelsize=8)
    m = results["machine"]
    title = f"lora_mini benchmark: {m['cpu']}, {m['cores']} cores, torch {m['torch']}, {m['torch_threads']} threads"
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _bars(ax, section: dict, title: str) -> None:
    runs = {n: s["seconds"] * 1e3 for n, s in section.items() if isinstance(s, dict)}
    ax.bar(list(runs), list(runs.values()), color=["#999999", "#1f77b4", "#ff7f0e"])
    ax.set_title(title, fontsize=10)


def _memory_panel(ax, memory: dict, batch_size: int) -> None:
    bottom = [0.0, 0.0]
    for kind in ["weights", "gradients", "optimizer", "activations", "temporaries"]:
        heights = [memory[n]["accounted"][kind] / MiB for n in ("lora", "full")]
        ax.bar(["LoRA", "full"], heights, bottom=bottom, label=kind)
        bottom = [b + h for b, h in zip(bottom, heights)]
    rss = [memory[n]["measured_rss"] / MiB for n in ("lora", "full")]
    ax.scatter(["LoRA", "full"], rss, color="black", marker="_", s=900, label="measured RSS", zorder=3)
    title = f"peak training memory, batch {batch_size} (MiB)\nLoRA/full {rss[0] / rss[1]:.3f} (measured)"
    ax.set_title(title, fontsize=10)
    ax.set_ylim(0, 1.25 * max(rss))
    ax.legend(fontsize=7, loc="upper left")


def _peers_panel(ax, points: list[dict]) -> None:
    labels = [f"{p['in']}x{p['out']}\nr={p['r']}\n{p['tokens']} tok" for p in points]
    for offset, (key, label) in enumerate((("lora_mini/peft", "/ PEFT"), ("lora_mini/loralib", "/ loralib"))):
        ax.bar([i + 0.4 * offset for i in range(len(points))], [p[key] for p in points], width=0.4, label=label)
    ax.axhline(1.0, color="black", lw=0.8)
    ax.set_xticks([i + 0.2 for i in range(len(points))], labels, fontsize=7)
    ax.set_ylim(min([0.8] + [p[k] - 0.05 for p in points for k in ("lora_mini/peft", "lora_mini/loralib")]), None)
    ax.set_title("lora_mini forward + backward time / peer's\n(below 1: lora_mini is faster)", fontsize=10)
    ax.legend(fontsize=7)


# ---------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------


def run(cfg: BenchConfig, quick: bool = False, default_malloc: bool = False) -> dict:
    """Every section in turn; the figures, the checks and the machine, as one JSON-ready dict."""
    t0 = time.perf_counter()
    torch.manual_seed(0)
    results: dict = {"machine": machine(), "quick": quick, "config": asdict(cfg), "checks": []}

    def measure(key: str, section: Callable, *args: object) -> None:
        print(f"measuring: {key} ...", flush=True)
        results[key], checks = section(cfg, *args)
        results["checks"] += [c.as_dict() for c in checks]

    results["allocator"] = "allocator defaults"
    if not default_malloc:
        measure("training_default_malloc", bench_training, "malloc defaults")
        if keep_freed_memory():
            results["allocator"] = "glibc, freed memory kept (M_TRIM_THRESHOLD 1 GiB, M_MMAP_THRESHOLD 32 MiB)"
    for key, section in (
        ("training", bench_training),
        ("memory", bench_memory),
        ("inference", bench_inference),
        ("peers", bench_peers),
        ("notebooks", bench_notebooks),
    ):
        measure(key, section)
    results["wall_seconds"] = time.perf_counter() - t0
    return results


def main(argv: Sequence[str] | None = None) -> dict:
    """Parse the command line, run, print the report, write the JSON and the chart if asked."""
    parser = argparse.ArgumentParser(prog="python -m lora_mini.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one notebook: proves the command works")
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    parser.add_argument("--chart", type=Path, help="draw the chart into this PNG")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's own choice)")
    parser.add_argument("--repeats", type=int, help="interleaved rounds per timing (default 7; quick 3)")
    parser.add_argument("--no-notebooks", action="store_true", help="skip section 5")
    parser.add_argument("--default-malloc", action="store_true", help="time with glibc's defaults (see the docstring)")
    parser.add_argument("--notebook-child", type=Path, help=argparse.SUPPRESS)  # used by time_notebook
    args = parser.parse_args(argv)
    if args.notebook_child:
        print(json.dumps(execute_notebook(args.notebook_child.resolve())))
        return {}
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = copy.deepcopy(QUICK if args.quick else BenchConfig())
    cfg.repeats = args.repeats or cfg.repeats
    cfg.notebooks = () if args.no_notebooks else cfg.notebooks
    results = run(cfg, quick=args.quick, default_malloc=args.default_malloc)
    print("\n" + report(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))
    if args.chart:
        draw_chart(results, args.chart)
    return results


if __name__ == "__main__":
    main()
