"""Kernels started by the tests (nbval, the browser tests) use one CPU thread each, as on Binder,
so that two of them never fight over the cores; and each checks every figure it draws.

The suite runs in parallel workers (pytest-xdist; pyproject's addopts: ``-n 3 --dist loadgroup
--no-loadscope-reorder``), and the hook pytest_collection_modifyitems below decides what each worker is handed:
one notebook's nbval cells at a time, both of its passes (see below), in order, in one kernel, followed by the
notebook's browser test where that test takes the kernel for the second pass.
"""
import functools
import json
import os
import warnings
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
# A lesson whose controls tests/test_browser.py moves runs that second pass in JupyterLab instead: nbval's
# kernel is handed to its browser test (SecondPassInTheBrowser, below), which runs every code cell in it
# again and then moves the controls, rather than running them a third time in a kernel of its own.

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


def browser_test_notebook(item) -> Path | None:
    """The notebook a test_browser.py test opens (None for the review's ten openings and other tests)."""
    name = getattr(item, "callspec", None) and item.callspec.params.get("name")
    if item.path.name != "test_browser.py" or not name:
        return None
    return item.path.parent.parent / "notebooks" / name


@functools.cache
def browser_cut(notebook: Path) -> tuple[list[dict], int]:
    """(the cells the notebook's browser test runs in a new kernel, the controls the executed notebook shows);
    for a notebook saved without outputs (its browser test says so): all its cells, 0."""
    from labdriver import browser_copy  # tests/labdriver.py: importable once tests/test_browser.py is collected

    saved = json.loads(notebook.read_text())
    try:
        cut, controls = browser_copy(saved)
    except ValueError:
        return saved["cells"], 0
    return cut["cells"], controls


def controls_shown(notebook: Path) -> int:
    """How many controls (outside its quiz) the executed notebook shows; 0 for one saved without outputs."""
    return browser_cut(notebook)[1]


def unit_seconds(notebook: Path, with_browser_test: bool) -> float:
    """The expected seconds of a notebook's unit: its nbval cells (both passes of a lesson), and its browser test
    when that test is in the unit. Roughly, from full runs: 5 s per control (each retrains live), 10 s to open."""
    seconds = recorded_seconds(notebook) * (1 + _is_lesson(notebook))
    return seconds + 5 * controls_shown(notebook) + 10 if with_browser_test else seconds


def _unit(item) -> tuple[str, float, bool]:
    """(the unit a worker is handed whole, its expected seconds, grouped or not)."""
    name, notebook = item.path.name, browser_test_notebook(item)
    if item.path.suffix == ".ipynb":  # nbval: one notebook, both passes, in one kernel
        return f"nbval-{item.path.stem}", unit_seconds(item.path, False), True
    if notebook is not None and controls_shown(notebook):  # with that notebook's nbval cells: it may take its kernel
        return f"nbval-{notebook.stem}", unit_seconds(notebook, True), True
    if name == "test_browser.py":  # the review's test, and a notebook without controls: a unit each
        # Roughly: 1.5x the recorded time of the cells it runs and 10 s to open; the review opens its notebook 10 times.
        if notebook is None:
            review = item.path.parent.parent / "notebooks" / "12_review.ipynb"
            return item.nodeid, 10 * (recorded_seconds(review) + 10), False
        return item.nodeid, 1.5 * cell_seconds(browser_cut(notebook)[0]) + 10, False  # its quiz cell, mostly
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
        cost[key] = max(cost.get(key, 0.0), seconds)
        if grouped and grouping:
            item.add_marker(pytest.mark.xdist_group(key))
    after_cells = lambda item: item.path.suffix != ".ipynb"  # noqa: E731 - a notebook's cells, then its browser test
    items[:] = [item for key in sorted(units, key=lambda k: -cost[k]) for item in sorted(units[key], key=after_cells)]


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


class SecondPassInTheBrowser:
    """A lesson with controls runs its second pass in JupyterLab: nbval's kernel, after the first pass, is handed
    to the lesson's browser test, which runs every code cell in it again (the second "Run All"), then moves the
    controls and answers the quiz. Its "Run All again" items are then dropped; they stay when either side is not
    selected (e.g. -m "not browser"), or on a machine where the browser tests skip. The unit in which both run in
    a row on one worker is made above (_unit)."""

    NAME = "lora-mini-second-pass"

    def __init__(self) -> None:
        self.notebooks: set[str] = set()  # lessons whose second pass runs in the browser
        self.kernels: dict[str, object] = {}  # nbval's kernels (nbval.kernel.RunningKernel), handed over
        self.lost: dict[str, str] = {}  # lessons whose first pass ran here but whose kernel was not handed over: why

    # Its part after the yield runs once -m, -k, --deselect and the Binder rule have deselected. (pytest's --lf,
    # --ff and --nf, off under pyproject's -p no:cacheprovider, filter and reorder after it: take() then falls back.)
    @pytest.hookimpl(wrapper=True)
    def pytest_collection_modifyitems(self, config, items):
        result = yield
        if any(browser_test_notebook(item) for item in items):
            from labdriver import browser_missing  # tests/labdriver.py (on the path once tests/ is collected)

            self.select(config, items, browser_missing() is None)
        return result

    def select(self, config, items: list, browsers_run: bool) -> None:
        """Which lessons run their second pass in the browser (both sides selected, and the browser tests
        run here rather than skip): their "Run All again" items deselected."""
        browser = {notebook.name for i in items if (notebook := browser_test_notebook(i)) and controls_shown(notebook)}
        nbval = {i.path.name for i in items if i.path.suffix == ".ipynb" and SECOND_RUN not in i.name}
        self.notebooks = browser & nbval if browsers_run else set()
        dropped = [i for i in items if i.path.name in self.notebooks and SECOND_RUN in i.name]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = [i for i in items if i not in dropped]

    @pytest.hookimpl(tryfirst=True)  # before pytest tears the notebook down: nbval would stop its kernel
    def pytest_runtest_teardown(self, item, nextitem):
        if browser_test_notebook(item) is not None:
            self._stop_kernels()  # one its test did not take (it skipped, or failed before it took it)
        lesson = item.path.suffix == ".ipynb" and item.path.name in self.notebooks
        if not lesson or getattr(nextitem, "path", None) == item.path:
            return  # not a lesson whose second pass moves, or not its last cell
        notebook = browser_test_notebook(nextitem) if nextitem is not None else None
        if notebook is None or notebook.name != item.path.name:
            self.lost[item.path.name] = "its browser test did not come right after its cells"
            return
        kernel, item.parent.kernel = item.parent.kernel, None  # nbval's IPyNbFile skips a kernel of None
        if kernel is not None and kernel.is_alive():
            self.kernels[notebook.name] = kernel
            self.lost.pop(notebook.name, None)
        else:
            self.lost[notebook.name] = "nbval's kernel had stopped (a cell timed out, or the kernel died)"

    def take(self, notebook: str):
        """nbval's kernel of ``notebook`` after its first pass, now the caller's to stop; None where the second
        pass is nbval's own, or where the notebook's cells did not run in this process (e.g. under --lf). Raises
        when they ran but their kernel was not handed over: its second pass would be lost."""
        if notebook in self.kernels:
            return self.kernels.pop(notebook)
        if notebook in self.lost:
            raise RuntimeError(f"{notebook}: nbval's kernel was not handed over for the second pass: "
                               f"{self.lost.pop(notebook)}")
        return None

    def pytest_sessionfinish(self):
        self._stop_kernels()

    def _stop_kernels(self) -> None:
        for notebook, kernel in self.kernels.items():
            try:
                kernel.stop()
            except Exception as e:  # noqa: BLE001 - said, not raised: this runs inside pytest's teardown
                warnings.warn(f"{notebook}: nbval's kernel did not stop cleanly: {e!r}", stacklevel=1)
        self.kernels.clear()


def pytest_configure(config):
    config.pluginmanager.register(_BinderSimulationRunsItsNotebook(), "lora-mini-binder-twin")
    config.pluginmanager.register(SecondPassInTheBrowser(), SecondPassInTheBrowser.NAME)
