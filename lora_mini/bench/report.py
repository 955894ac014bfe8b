"""The report of a run: the machine, the summary of checks, and one markdown table per section."""
from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

from .common import Check, MiB
from .course import BUDGET_S, PEAK_MB


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
    rows = [f"| notebook | time (1 thread) | kernel peak RSS | result (≤ {BUDGET_S} s, < 1 GB) |", "|---|---:|---:|---|"]
    for n in notebooks["notebooks"]:
        ok = n["seconds"] <= BUDGET_S and n["peak_rss_mb"] < PEAK_MB
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
