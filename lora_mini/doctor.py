"""Setup check: what is installed, and what to do about anything that is wrong.

    python -m lora_mini.doctor          # in a terminal: prints the report, exit status 1 if a problem is found
    python lora_mini/doctor.py          # the same, where importing lora_mini (and so torch) itself fails
    from lora_mini.doctor import check_setup; check_setup()   # a notebook's first cell

It reports, in a few lines: Python; torch (version, CPU or CUDA build, threads, import time); the
notebook stack's versions (jupyterlab, ipykernel, ipywidgets, widgetsnbextension, jupyterlab_widgets);
whether JupyterLab's widget manager is installed and enabled; and whether this Python (the notebook's
kernel) is the course's environment. Each problem comes with the one command or setting that fixes it.
The checks are in ``lora_mini.doctor_checks`` (standard library only); in a notebook, ``check_setup()``
(``lora_mini.doctor_widget``) also shows a test widget and reports whether the frontend really rendered it.
Nothing here ever raises: the check never fails a notebook.
"""
from __future__ import annotations

import sys

if __package__:  # imported, or python -m lora_mini.doctor
    from .doctor_checks import NOTEBOOK_STACK, WIDGET_MANAGER, Check, report, run_checks
    from .doctor_widget import check_setup
else:  # python lora_mini/doctor.py: its folder is on sys.path, the package (and torch) is never imported
    from doctor_checks import NOTEBOOK_STACK, WIDGET_MANAGER, Check, report, run_checks  # type: ignore[no-redef]

__all__ = ["NOTEBOOK_CELL", "NOTEBOOK_STACK", "WIDGET_MANAGER", "Check", "check_setup", "main", "report", "run_checks"]

# The first code cell of notebook 00. When lora_mini or torch does not even import, the kernel is not the
# course's environment (or torch's wheel is broken), and the cell says so instead of failing.
NOTEBOOK_CELL = '''\
# Setup check: Python, torch, the notebook stack, this kernel, and a test widget (README "Troubleshooting").
try:
    from lora_mini.doctor import check_setup
except (ImportError, OSError) as err:  # lora_mini or torch does not load in this kernel
    import sys
    print(f"PROBLEM: {err!r} in this kernel ({sys.executable}): it is not the course's environment.\\n"
          "Fix: start JupyterLab from the course's venv: . .venv/bin/activate && jupyter lab notebooks/")
else:
    check_setup()'''


def main(argv: list[str] | None = None) -> int:
    """The terminal report, with ``import torch`` timed in a fresh Python; 1 if a problem is found, else 0."""
    checks = run_checks(time_import=True)
    print(report(checks))
    return 1 if any(c.status == "problem" for c in checks) else 0


if __name__ == "__main__":
    sys.exit(main())
