"""Execute the course notebooks in place, top to bottom, each in a fresh kernel on one CPU thread.

    python scripts/execute_notebooks.py                 # every notebook under notebooks/
    python scripts/execute_notebooks.py notebooks/02_lora_from_scratch.ipynb

The outputs are saved into the notebooks (so GitHub shows the plots) with execution counts
1, 2, 3, ... in order. For each notebook it prints the wall time and the kernel's peak RSS,
the course's budget being 45 s and 1 GB on one thread (Binder's one CPU).
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def execute(path: Path) -> dict:
    """Run one notebook in place (called in a child process, so RUSAGE_CHILDREN is the kernel alone)."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    t0 = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - t0
    nbformat.write(nb, path)
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"notebook": path.name, "seconds": round(seconds, 1), "peak_rss_mb": round(peak_kib / 1024, 1)}


def main(paths: list[Path]) -> None:
    print("| notebook | time (1 thread) | kernel peak RSS |\n|---|---|---|")
    for path in paths:
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(path)],
            env={**os.environ, **ONE_THREAD},
            capture_output=True,
            text=True,
        )
        if out.returncode != 0:
            sys.exit(f"{path} failed:\n{out.stderr[-4000:]}")
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"| {r['notebook']} | {r['seconds']} s | {r['peak_rss_mb']} MB |", flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--one"]:
        print(json.dumps(execute(Path(sys.argv[2]).resolve())))
    else:
        args = [Path(a) for a in sys.argv[1:]]
        found = sorted(p for p in (ROOT / "notebooks").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
        main(args or found)
