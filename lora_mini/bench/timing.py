"""Timing: interleaved rounds, medians, and glibc's malloc told to keep freed memory.

Warm-up calls first, then ``repeats`` rounds; in each round every contender runs once (a short call:
a loop of calls lasting at least ``min_sample_s``), in an order rotated from round to round. A time
is the median over rounds. A ratio is the median over rounds of that round's ratio, whose two parts
ran seconds apart, so a busy neighbour slows both.
"""
from __future__ import annotations

import ctypes
import math
import resource
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Callable

from .common import BenchConfig


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

    def figures(self, flops: dict[str, int]) -> dict:
        """Each contender's median seconds, predicted FLOPs, achieved FLOP rate and page faults per call."""
        return {
            name: {
                "seconds": self.median(name),
                "samples": self.seconds[name],
                "flops": flops[name],
                "gflop_per_s": flops[name] / self.median(name) / 1e9,
                "page_faults": statistics.median(self.faults[name]),
            }
            for name in self.seconds
        }


def interleaved(contenders: dict[str, Callable[[], object]], cfg: BenchConfig) -> Samples:
    """Time each contender in ``cfg.repeats`` rounds after ``cfg.warmup`` calls each, rotating the order."""
    names = list(contenders)
    for _ in range(cfg.warmup):
        for fn in contenders.values():
            fn()
    inner = calls_per_sample(contenders[names[0]], cfg.min_sample_s)
    out = Samples({n: [] for n in names}, {n: [] for n in names})
    for i in range(cfg.repeats):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            faults, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
            for _ in range(inner):
                contenders[name]()
            out.seconds[name].append((time.perf_counter() - t0) / inner)
            out.faults[name].append((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / inner)
    return out


def calls_per_sample(fn: Callable[[], object], min_seconds: float) -> int:
    """How many calls of ``fn`` last at least ``min_seconds`` (from one timed call)."""
    t0 = time.perf_counter()
    fn()
    return max(1, math.ceil(min_seconds / max(time.perf_counter() - t0, 1e-9)))


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
