"""Kernels started by the tests (nbval, the browser tests) use one CPU thread each, as on Binder,
so that two of them never fight over the cores; and each checks every figure it draws.

The suite runs in parallel workers (pytest-xdist; pyproject's addopts: ``-n 3 --dist loadgroup
--no-loadscope-reorder``), and the hook pytest_collection_modifyitems below decides what each worker is handed:
one notebook's nbval cells at a time, both of its passes (see below), in order, in one kernel.
"""
import functools
import json
import os
from datetime import datetime
from pathlib import Path

import pytest

from lora_mini.plots import figure_check_ipython_dir

for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(var, "1")

# A cell that draws an axes without labels or a title fails where it drew it (tests/test_plots.py): the
# profile in this IPYTHONDIR installs lora_mini.plots.install_figure_check in every kernel started here.
os.environ["IPYTHONDIR"] = figure_check_ipython_dir()


# ---------------------------------------------------------------------------------------------------------
# Issue 19: the README's test command in <= 10 minutes on 2 cores. Each lesson is executed by nbval (a) and
# survives "Run All" twice in one kernel (b): nbval runs its code cells a second time, in the same kernel,
# right after the first pass ("Cell k (Run All again)"), so no test executes a notebook only to re-run it.

SECOND_RUN = "Run All again"
BINDER_SECONDS = 600  # scripts/simulate_binder.sh builds a fresh environment: the longest test, handed out first


def cell_seconds(cells: list[dict]) -> float:
    """How long these cells took when their notebook was last executed (their timestamps)."""
    total = 0.0
    for cell in cells:
        times = cell.get("metadata", {}).get("execution", {})
        if "iopub.status.busy" in times and "iopub.status.idle" in times:
            busy, idle = (datetime.fromisoformat(times[k]) for k in ("iopub.status.busy", "iopub.status.idle"))
            total += (idle - busy).total_seconds()
    return total


@functools.cache
def recorded_seconds(notebook: Path) -> float:
    """How long the committed notebook's cells took when it was last executed."""
    return cell_seconds(json.loads(notebook.read_text())["cells"])


def _is_lesson(notebook: Path) -> bool:
    return notebook.suffix == ".ipynb" and notebook.name[:2].isdigit()


def _with_second_run(items: list) -> list:
    """After the last cell of each numbered notebook, its code cells once more, in the same kernel."""
    from nbval.plugin import IPyNbCell

    out = []
    for i, item in enumerate(items):
        out.append(item)
        last = i + 1 == len(items) or items[i + 1].parent is not item.parent
        if isinstance(item, IPyNbCell) and last and _is_lesson(item.path):
            cells = [c for c in out if isinstance(c, IPyNbCell) and c.parent is item.parent]
            out += [IPyNbCell.from_parent(c.parent, name=f"{c.name} ({SECOND_RUN})", cell_num=c.cell_num,
                                          cell=c.cell, options=c.options) for c in cells]
    return out


def _unit(item) -> tuple[str, float, bool]:
    """(the unit a worker is handed whole, its expected seconds, grouped or not)."""
    name = item.path.name
    if item.path.suffix == ".ipynb":  # nbval: one notebook, both passes, in one kernel
        return f"nbval-{item.path.stem}", recorded_seconds(item.path) * (1 + _is_lesson(item.path)), True
    if name == "test_browser.py":  # one notebook each, so that every worker drives its own JupyterLab
        # Roughly, from full runs: a browser test takes 1.5x the recorded time of the cells it runs (its
        # controls retrain live) plus 5 s per control and 10 s to open; the review's test opens the notebook 10 times.
        notebooks = item.path.parent.parent / "notebooks"
        if "review_renders" in item.name:
            return item.nodeid, 10 * (recorded_seconds(notebooks / "12_review.ipynb") + 10), False
        path = notebooks / item.callspec.params["name"]
        try:
            cut, controls = item.module.browser_copy(json.loads(path.read_text()))
        except ValueError:  # a notebook saved without outputs: its browser test says so
            return item.nodeid, 1.5 * recorded_seconds(path) + 20, False
        return item.nodeid, 1.5 * cell_seconds(cut["cells"]) + 5 * controls + 10, False
    if name == "test_binder.py":
        return item.nodeid.split("::")[0], BINDER_SECONDS, True
    return item.nodeid.split("::")[0], 0.0, True  # a test file: its module fixtures built once


@pytest.hookimpl(tryfirst=True)  # before xdist reads the xdist_group marks
def pytest_collection_modifyitems(config, items):
    """The second pass of every lesson; then the units, longest first (so that the last ones handed out
    are short and the workers finish together), each notebook's or test file's items in one xdist group."""
    if any(item.path.suffix == ".ipynb" for item in items):
        items[:] = _with_second_run(items)
    grouping = config.pluginmanager.hasplugin("xdist")
    units: dict[str, list] = {}
    cost: dict[str, float] = {}
    for item in items:
        key, seconds, grouped = _unit(item)
        units.setdefault(key, []).append(item)
        cost[key] = seconds
        if grouped and grouping:
            item.add_marker(pytest.mark.xdist_group(key))
    items[:] = [item for key in sorted(units, key=lambda k: -cost[k]) for item in units[key]]


class _BinderSimulationRunsItsNotebook:
    """tests/test_binder.py's simulation runs tests/test_browser.py's test of one notebook (BINDER_NOTEBOOK)
    against a JupyterLab built from binder/; when it is selected, that browser test is not run a second time
    against this environment's JupyterLab (the same test, the same pinned versions)."""

    @pytest.hookimpl(trylast=True)  # after -m and -k have deselected what they deselect
    def pytest_collection_modifyitems(self, config, items):
        binder = [i for i in items if i.name == "test_binder_simulation_runs_its_notebook"]
        if not binder:
            return
        twin = f"test_notebook_widgets_work_in_jupyterlab[{binder[0].module.BINDER_NOTEBOOK}.ipynb]"
        dropped = [i for i in items if i.path.name == "test_browser.py" and i.name == twin]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = [i for i in items if i not in dropped]


def pytest_configure(config):
    config.pluginmanager.register(_BinderSimulationRunsItsNotebook(), "lora-mini-binder-twin")
