"""Run a course notebook top to bottom in a fresh kernel on one CPU thread: its wall time and the kernel's peak RSS.

    python -m lora_mini.notebook_runner notebooks/02_lora_from_scratch.ipynb [--save]

The one notebook runner of the project: the benchmark's notebook section (``lora_mini.bench``) times
with it, and ``scripts/execute_notebooks.py`` executes the notebooks in place with it (``save``).
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}  # Binder's one CPU


def find_notebooks(folder: Path, names: Sequence[str] | None = None) -> list[Path]:
    """The notebooks under ``folder`` (sub-folders such as solutions/ included), or those among them named in
    ``names``; [] when the folder does not exist."""
    found = sorted(p for p in Path(folder).rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    return found if names is None else [p for p in found if p.name in names]


def execute_notebook(path: Path, save: bool = False) -> dict:
    """Run the notebook at ``path`` in a fresh kernel started in its folder: wall time and the kernel's peak RSS.

    Call it in a child process (as :func:`run_notebook` does): RUSAGE_CHILDREN is then the kernel
    alone. With ``save`` the outputs are written back into the notebook (execution counts 1, 2, 3, ...).
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


def run_notebook(path: Path, save: bool = False) -> dict:
    """:func:`execute_notebook` in a fresh Python on one CPU thread; a RuntimeError with the end of its
    stderr if a cell fails. The notebook file changes only with ``save``."""
    command = [sys.executable, "-m", "lora_mini.notebook_runner", str(Path(path).resolve())] + ["--save"] * save
    out = subprocess.run(command, env={**os.environ, **ONE_THREAD}, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{path} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    print(json.dumps(execute_notebook(Path(sys.argv[1]).resolve(), save="--save" in sys.argv[2:])))
