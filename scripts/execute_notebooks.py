"""Execute the course notebooks in place, top to bottom, each in a fresh kernel on one CPU thread.

    python scripts/execute_notebooks.py                 # every notebook under notebooks/
    python scripts/execute_notebooks.py notebooks/02_lora_from_scratch.ipynb

The outputs are saved into the notebooks (so GitHub shows the plots) with execution counts
1, 2, 3, ... in order. For each notebook it prints the wall time and the kernel's peak RSS,
the course's budget being 45 s and 1 GB on one thread (Binder's one CPU). The executing and
measuring is lora_mini.bench's (its section 5 runs the same without saving).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from lora_mini.bench import ONE_THREAD, execute_notebook, find_notebooks


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
        print(json.dumps(execute_notebook(Path(sys.argv[2]).resolve(), save=True)))
    else:
        main([Path(a) for a in sys.argv[1:]] or find_notebooks())
