"""Every lesson survives "Run All" twice in one kernel (injection and training cells are re-runnable).

The proof is the suite's own run of the notebooks (`python -m pytest --nbval-lax`): the root conftest.py makes
nbval execute each numbered notebook's code cells a second time, in order, right after the first pass, as items
of the same notebook file, that is in the same kernel (nbval starts one kernel per notebook file); or, for a
lesson with controls, hands that kernel to the lesson's browser test, next in line, which runs every code cell in
it again (and checks that it ran there). This test checks that collection, so that the second pass cannot
silently disappear; it executes no notebook itself. It also checks the collection's other rule: a browser test
the Binder simulation runs is not run twice.
"""
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import labdriver
import nbformat
import pytest
from test_binder import BINDER_NOTEBOOK

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("root_conftest", ROOT / "conftest.py")  # not tests/conftest.py
root_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(root_conftest)
SECOND_RUN, recorded_seconds = root_conftest.SECOND_RUN, root_conftest.recorded_seconds

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _collect() -> list[str]:
    """The node ids a collect-only run of the suite lists, in the order they would run (-n 0: no workers)."""
    run = subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "--collect-only", "-q", "-n", "0"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return [line for line in run.stdout.splitlines() if "::" in line]


@pytest.fixture(scope="module")
def suite_items(request) -> list[str]:
    """The whole suite's node ids in run order: this session's own when it is the README's command (all of
    the suite collected, nothing selected away), else those of a collect-only run."""
    config = request.config
    whole = config.args == config.getini("testpaths") and not config.option.keyword and not config.option.markexpr
    own = [item.nodeid.split("@")[0] for item in request.session.items]  # xdist adds "@<group>"
    if whole and any(".ipynb::" in i for i in own) and any(i.startswith("tests/test_binder.py::") for i in own):
        return own
    return _collect()


@pytest.fixture(scope="module")
def nbval_items(suite_items) -> list[str]:
    """The node ids nbval collects for the notebooks, in the order they run."""
    return [i for i in suite_items if i.startswith("notebooks/")]


def test_the_binder_simulations_notebook_is_browser_tested_once(suite_items):
    """The Binder simulation runs one notebook's browser test; the suite does not run that test again."""
    twin = f"tests/test_browser.py::test_notebook_widgets_work_in_jupyterlab[{BINDER_NOTEBOOK}.ipynb]"
    assert "tests/test_binder.py::test_binder_simulation_runs_its_notebook" in suite_items
    assert twin not in suite_items
    assert any(i.startswith("tests/test_browser.py::test_notebook_widgets_work_in_jupyterlab[01_") for i in suite_items)


def test_without_the_binder_simulation_its_notebook_is_browser_tested_here():
    """The rule drops the twin only when the simulation itself is selected (e.g. not under -m "not binder")."""
    def item(name, path, module=None):
        return SimpleNamespace(name=name, path=Path(path), module=module)

    twin = item(f"test_notebook_widgets_work_in_jupyterlab[{BINDER_NOTEBOOK}.ipynb]", "tests/test_browser.py")
    other = item("test_notebook_widgets_work_in_jupyterlab[01_toy_transformer.ipynb]", "tests/test_browser.py")
    simulation = item("test_binder_simulation_runs_its_notebook", "tests/test_binder.py",
                      SimpleNamespace(BINDER_NOTEBOOK=BINDER_NOTEBOOK))
    config = SimpleNamespace(hook=SimpleNamespace(pytest_deselected=lambda items: None))
    rule = root_conftest._BinderSimulationRunsItsNotebook()
    items = [twin, other]
    rule.pytest_collection_modifyitems(config, items)
    assert items == [twin, other]
    items = [twin, other, simulation]
    rule.pytest_collection_modifyitems(config, items)
    assert items == [other, simulation]


def _browser_test(name: str) -> str:
    return f"tests/test_browser.py::test_notebook_widgets_work_in_jupyterlab[{name}]"


def _second_pass_in_the_browser(path: Path) -> bool:
    """Whether the README's command runs this lesson's second pass in its browser test: it shows controls, that
    test runs outside the Binder simulation, and the browser tests run here (CI: always)."""
    return bool(root_conftest.controls_shown(path)) and path.stem != BINDER_NOTEBOOK and not labdriver.browser_missing()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_code_cell_runs_twice_in_one_kernel_in_order(suite_items, path):
    n = sum(cell.cell_type == "code" for cell in nbformat.read(path, as_version=4).cells)
    first = [f"notebooks/{path.name}::Cell {k}" for k in range(n)]
    ran = [i for i in suite_items if i.startswith(f"notebooks/{path.name}::")]
    if _second_pass_in_the_browser(path):  # right after the first pass, so that it takes nbval's kernel
        assert ran == first
        assert suite_items[suite_items.index(first[-1]) + 1] == _browser_test(path.name)
    else:
        assert ran == first + [f"{item} ({SECOND_RUN})" for item in first]


def test_the_second_pass_moves_to_the_browser_only_when_both_sides_run():
    """-m "not browser", a lone notebook, or a machine where the browser tests skip: nbval's own second pass."""
    lesson = next(p for p in NOTEBOOKS if root_conftest.controls_shown(p))

    def items() -> list:
        first, again = (SimpleNamespace(path=lesson, name=f"Cell 0{tail}") for tail in ("", f" ({SECOND_RUN})"))
        browser = SimpleNamespace(path=ROOT / "tests" / "test_browser.py", name=f"test_[{lesson.name}]",
                                  callspec=SimpleNamespace(params={"name": lesson.name}))
        return [first, again, browser]

    config = SimpleNamespace(hook=SimpleNamespace(pytest_deselected=lambda items: None))
    rule = root_conftest.SecondPassInTheBrowser()
    first, again, browser = "Cell 0", f"Cell 0 ({SECOND_RUN})", f"test_[{lesson.name}]"
    for keep, browsers_run, left, moved in [(slice(0, 3), True, [first, browser], {lesson.name}),
                                            (slice(0, 3), False, [first, again, browser], set()),
                                            (slice(0, 2), True, [first, again], set()),
                                            (slice(2, 3), True, [browser], set())]:
        selected = items()[keep]
        rule.select(config, selected, browsers_run)
        assert [i.name for i in selected] == left
        assert rule.notebooks == moved


class _Kernel:
    def __init__(self, alive: bool = True) -> None:
        self.alive, self.stopped = alive, False

    def is_alive(self) -> bool:
        return self.alive

    def stop(self) -> None:
        self.stopped = True


def _handover_items(lesson: Path, other: Path, kernel) -> tuple:
    """nbval's last two cells of ``lesson`` (their file holding ``kernel``), its browser test, another's."""
    nbval_file = SimpleNamespace(kernel=kernel)
    cells = [SimpleNamespace(path=lesson, name=f"Cell {k}", parent=nbval_file) for k in (0, 1)]
    test_browser = ROOT / "tests" / "test_browser.py"
    browser = [SimpleNamespace(path=test_browser, callspec=SimpleNamespace(params={"name": p.name})) for p in (lesson, other)]
    return (*cells, *browser)


def test_nbvals_kernel_goes_to_the_lessons_own_browser_test_and_only_after_its_last_cell():
    lesson, other = NOTEBOOKS[5], NOTEBOOKS[6]
    rule = root_conftest.SecondPassInTheBrowser()
    rule.notebooks = {lesson.name}
    kernel = _Kernel()
    first, last, browser, other_browser = _handover_items(lesson, other, kernel)
    rule.pytest_runtest_teardown(first, last)  # not its last cell: nothing moves
    assert first.parent.kernel is kernel and rule.take(lesson.name) is None
    rule.pytest_runtest_teardown(last, other_browser)  # another notebook's test next: nbval keeps and stops it
    assert last.parent.kernel is kernel
    with pytest.raises(RuntimeError, match="did not come right after its cells"):
        rule.take(lesson.name)
    rule.pytest_runtest_teardown(last, browser)
    assert last.parent.kernel is None and rule.take(lesson.name) is kernel and not kernel.stopped
    assert rule.take(other.name) is None  # its cells did not run here: its test runs its own cut


def test_a_dead_or_untaken_kernel_is_said_or_stopped():
    lesson, other = NOTEBOOKS[5], NOTEBOOKS[6]
    rule = root_conftest.SecondPassInTheBrowser()
    rule.notebooks = {lesson.name}
    _, last, browser, _ = _handover_items(lesson, other, _Kernel(alive=False))
    rule.pytest_runtest_teardown(last, browser)
    with pytest.raises(RuntimeError, match="had stopped"):
        rule.take(lesson.name)
    kernel = _Kernel()
    _, last, browser, _ = _handover_items(lesson, other, kernel)
    rule.pytest_runtest_teardown(last, browser)
    rule.pytest_runtest_teardown(browser, None)  # its test ended without taking it (it skipped)
    assert kernel.stopped and rule.take(lesson.name) is None


def test_the_solutions_notebook_runs_once(nbval_items):
    """Only the lessons are re-run; the solutions notebook is executed once, as before."""
    ids = [i for i in nbval_items if i.startswith("notebooks/solutions/")]
    assert ids and not any(SECOND_RUN in i for i in ids)


def test_longest_notebooks_are_handed_out_first(nbval_items):
    """Workers take units in collection order: the notebooks that take longest come first (with their browser
    test, in their unit where they show controls), so that the last units handed out are short and the workers
    finish together."""
    order = [ROOT / p for p in dict.fromkeys(i.split("::")[0] for i in nbval_items)]
    seconds = [root_conftest.unit_seconds(p, bool(root_conftest.controls_shown(p))) for p in order]
    assert seconds == sorted(seconds, reverse=True), list(zip(order, seconds))
    assert min(recorded_seconds(p) for p in order) > 0, "the committed notebooks carry no execution timestamps"
