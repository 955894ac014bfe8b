"""Execute the course notebooks in place, top to bottom, each in a fresh kernel on one CPU thread.

    python scripts/execute_notebooks.py                 # every notebook under notebooks/
    python scripts/execute_notebooks.py notebooks/02_lora_from_scratch.ipynb

The outputs are saved into the notebooks (so GitHub shows the plots) with execution counts
1, 2, 3, ... in order. For each notebook it prints the wall time and the kernel's peak RSS,
the course's budget being 45 s and 1 GB on one thread (Binder's one CPU). The executing and
measuring is lora_mini.notebook_runner's, which the benchmark's notebook section uses too.
"""
from __future__ import annotations

import sys
from pathlib import Path

from lora_mini.notebook_runner import find_notebooks, run_notebook

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def main(paths: list[Path]) -> None:
    print("| notebook | time (1 thread) | kernel peak RSS |\n|---|---|---|")
    for path in paths:
        try:
            r = run_notebook(path, save=True)
        except RuntimeError as err:
            sys.exit(str(err))
        print(f"| {r['notebook']} | {r['seconds']} s | {r['peak_rss_mb']} MB |", flush=True)


if __name__ == "__main__":
    main([Path(a) for a in sys.argv[1:]] or find_notebooks(NOTEBOOKS))
