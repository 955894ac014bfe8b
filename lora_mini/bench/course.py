"""Section 5, the course: each notebook's wall time and kernel peak RSS on one CPU thread, and load_base's time.

The notebooks come from ``cfg.notebook_dir`` (``--notebooks DIR``; by default ``notebooks/`` in the
current directory), never from the package's own location: an installed lora_mini has no notebooks.
"""
from __future__ import annotations

import statistics
import time
from pathlib import Path

from ..notebook_runner import find_notebooks, run_notebook
from ..pretrain import load_base
from .common import BenchConfig, Check

BUDGET_S, TOTAL_S, PEAK_MB = 45, 360, 1024  # per notebook, all together, kernel peak (Binder: 1 CPU, 2 GB)


def load_base_seconds(repeats: int = 5) -> float:
    """Median wall time of ``load_base()`` after one warm-up call (what every notebook waits for, often)."""
    load_base()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        load_base()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def course_notebooks(cfg: BenchConfig) -> list[Path]:
    """The notebooks to time, or [] after saying why there are none."""
    folder = Path(cfg.notebook_dir)
    if cfg.notebooks == ():
        print("notebooks skipped (--no-notebooks)", flush=True)
        return []
    if not folder.is_dir():
        print(f"notebooks skipped: there is no folder {folder.resolve()}; run the benchmark from the course's "
              "checkout or pass --notebooks DIR", flush=True)
        return []
    paths = find_notebooks(folder, cfg.notebooks)
    if not paths:
        wanted = "no notebooks" if cfg.notebooks is None else f"none of {', '.join(cfg.notebooks)}"
        print(f"notebooks skipped: {folder.resolve()} holds {wanted}", flush=True)
    return paths


def bench_notebooks(cfg: BenchConfig) -> tuple[dict, list[Check]]:
    """Time every notebook of the course; the slowest, the sum and the largest peak against their budgets."""
    load_s = load_base_seconds()
    checks = [Check("load_base(), warm", load_s, 1.0, unit="s")]
    runs = []
    for path in course_notebooks(cfg):
        runs.append({**run_notebook(path), "notebook": str(path.relative_to(cfg.notebook_dir))})
        print(f"  {runs[-1]['notebook']}: {runs[-1]['seconds']} s, {runs[-1]['peak_rss_mb']} MB", flush=True)
    if runs:
        which = "all" if cfg.notebooks is None else "only " + ", ".join(r["notebook"] for r in runs)
        checks += [
            Check(f"notebooks ({which}): slowest, 1 thread", max(r["seconds"] for r in runs), BUDGET_S, unit="s"),
            Check(f"notebooks ({which}): all together", sum(r["seconds"] for r in runs), TOTAL_S, unit="s"),
            Check(f"notebooks ({which}): largest kernel peak RSS", max(r["peak_rss_mb"] for r in runs), PEAK_MB,
                  unit="MB"),
        ]
    return {"notebooks": runs, "load_base_seconds": load_s}, checks
