"""The command: every section in turn, then the report, the JSON and the chart."""
from __future__ import annotations

import argparse
import copy
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Sequence

import torch

from .chart import draw_chart
from .common import QUICK, BenchConfig
from .course import bench_notebooks
from .inference import bench_inference
from .peak_memory import bench_memory
from .peft_peers import bench_peers
from .report import machine, report
from .timing import keep_freed_memory
from .training import bench_training

HEADLINE = "Does LoRA train faster, use less memory and add no inference latency, here? And is lora_mini as fast as PEFT?"


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
    parser = argparse.ArgumentParser(prog="python -m lora_mini.bench", description=HEADLINE)
    parser.add_argument("--quick", action="store_true", help="small sizes, one notebook: proves the command works")
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    parser.add_argument("--chart", type=Path, help="draw the chart into this PNG")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's own choice)")
    parser.add_argument("--repeats", type=int, help="interleaved rounds per timing (default 7; quick 3)")
    parser.add_argument("--no-notebooks", action="store_true", help="skip section 5")
    parser.add_argument("--default-malloc", action="store_true", help="time with glibc's defaults (see lora_mini/bench/__init__.py)")
    parser.add_argument("--notebooks", type=Path, default=Path("notebooks"), metavar="DIR",
                        help="the course's notebooks folder for section 5 (default: notebooks/ in the current directory)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = copy.deepcopy(QUICK if args.quick else BenchConfig())
    cfg.repeats = args.repeats or cfg.repeats
    cfg.notebooks = () if args.no_notebooks else cfg.notebooks
    cfg.notebook_dir = str(args.notebooks)
    results = run(cfg, quick=args.quick, default_malloc=args.default_malloc)
    print("\n" + report(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))
    if args.chart:
        draw_chart(results, args.chart)
    return results

