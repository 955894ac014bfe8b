"""The widgets really render and respond in JupyterLab, in headless Chromium (not only under nbval).

For every notebook: Run All Cells; no error output, no "Error displaying widget", no browser console error.
Every slider, selector, target checkbox and text box is moved with the keyboard and the output it drives must
change; as many move as the executed notebook shows. The first multiple-choice quiz question is answered wrong
(the explanation appears, the score does not rise), then right ("Correct").

What Run All runs: a lesson with controls is opened on the kernel in which nbval has just run its first pass
(the root conftest.py hands it over), and every code cell runs again in it: its second pass; the test checks that
the notebook's session is on that kernel. Otherwise a new kernel runs what the controls and the quiz need: the
code cells up to the last one that shows a control, then the quiz and the cells defining what it calls
(labdriver.browser_copy); for a lesson without controls, only those. nbval runs every cell either way.

A worker keeps one JupyterLab page for all the browser tests it runs: the first notebook is opened by a page
load, the next ones from its file browser, and each is closed after its test.

Select with `-m browser`. They skip on a machine without Chromium, and fail instead when CI=true
or LORA_MINI_REQUIRE_BROWSER=1. LORA_MINI_JUPYTER names the `jupyter` to serve the notebooks
with (scripts/simulate_binder.sh points it at a Binder-like environment). Screenshots go to
artifacts/browser/<notebook>.png.
"""
from __future__ import annotations

import contextlib
import json
import os
import shlex
from pathlib import Path

import pytest

from labdriver import (ERROR_OUTPUT, Lab, browser_copy, close_notebook, open_notebook, output_state,
                       require_browser, run_all_and_wait, wait_for_change)

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
ARTIFACTS = ROOT / "artifacts" / "browser"
CONTROLS = ".widget-hslider, .widget-dropdown, .widget-checkbox, .widget-text"  # what _move_every_control moves


# Session-scoped: under pytest-xdist each worker that is handed a browser test starts one JupyterLab and keeps
# it while it runs other tests in between (a module scope would restart it each time the worker comes back).
@pytest.fixture(scope="session")
def lab():
    require_browser()
    jupyter = shlex.split(os.environ["LORA_MINI_JUPYTER"]) if os.environ.get("LORA_MINI_JUPYTER") else None
    with Lab(ROOT / "notebooks", jupyter=jupyter) as server:
        yield server


class Pages:
    """One JupyterLab page (in tests/conftest.py's Chromium), kept across the tests of this module that a worker
    runs (a page load costs several seconds of CPU); a new one after a test that could not close its notebook."""

    def __init__(self, chromium):
        self.chromium, self.page = chromium, None

    def get(self):
        if self.page is None:
            page = self.page = self.chromium.new_page(viewport={"width": 1280, "height": 900})
            page.problems = []  # browser console errors and uncaught page errors
            page.on("console", lambda m: m.type == "error" and page.problems.append(f"console: {m.text}"))
            page.on("pageerror", lambda e: page.problems.append(f"page error: {e}"))
        self.page.problems.clear()
        return self.page

    def release(self, lab) -> None:
        try:
            close_notebook(self.page, lab)
        except Exception:  # noqa: BLE001 - a page in an unknown state: the next test starts a new one
            self.reset()
            lab.shut_down_kernels()

    def reset(self) -> None:
        """Close the page: the next get() opens a new one, and its first notebook comes by a page load."""
        if self.page is not None:
            self.page.close()
            self.page = None


@pytest.fixture(scope="session")  # the tests of this module come between nbval's notebooks (conftest.py)
def pages(chromium):
    return Pages(chromium)


@pytest.fixture
def page(pages, lab):
    yield pages.get()
    pages.release(lab)


@pytest.fixture
def nbval_kernel(request, name, page, pages, lab):
    """nbval's kernel of notebook ``name`` after its first pass, when the second pass runs here (conftest.py's
    SecondPassInTheBrowser), else None. Afterwards: the tab closed and the session ended while the kernel still
    answers, then the kernel stopped (JupyterLab's server never owned it), whatever failed before."""
    kernel = request.config.pluginmanager.get_plugin("lora-mini-second-pass").take(name)
    if kernel is None:
        yield None
        return
    try:  # quiz answers go to the server's folder, as in the kernels it starts (labdriver.Lab)
        reply = kernel.kc.execute_interactive(f"import os; os.environ['LORA_MINI_PROGRESS'] = "
                                              f"{str(lab.workdir / 'progress.json')!r}", silent=True, timeout=60)
        assert reply["content"]["status"] == "ok", reply["content"]
        yield kernel
    finally:
        try:
            pages.release(lab)
        finally:
            kernel.stop()


def notebook_for_the_browser(lab, name: str, every_cell: bool) -> int:
    """Write the browser's copy of ``name`` (every code cell, or the cut) into the folder JupyterLab serves;
    how many controls it shows."""
    copy, controls = browser_copy(json.loads((ROOT / "notebooks" / name).read_text()), every_cell)
    (lab.root / name).write_text(json.dumps(copy))
    return controls


def _cell_of(control):
    return control.locator("xpath=ancestor::div[contains(@class, 'jp-Cell')][1]")


def _move(page, keys_forward: list[str], keys_back: list[str], value, start) -> None:
    """``start()`` (focus or open the control), press ``keys_forward``; if ``value()`` did not change
    (the control was at its end), start again and press ``keys_back``."""
    before = value()
    for keys in (keys_forward, keys_back):
        start()
        for key in keys:
            page.keyboard.press(key)
        if wait_for_change(page, value, before, timeout_s=3) != before:
            return
    raise AssertionError(f"the keys {keys_forward} / {keys_back} did not move the control from {before!r}")


def _check_drives_output(page, control, move) -> None:
    cell = _cell_of(control)
    control.scroll_into_view_if_needed()
    before = output_state(cell)
    assert before.strip(), "the control's cell shows no output to change"
    move()
    after = wait_for_change(page, lambda: output_state(cell), before)
    assert after != before, f"moving the control did not change its output:\n{before[:300]}"


def _move_every_control(page) -> int:
    outside_quiz = ":not(.lora-quiz *)"
    moved = 0
    for slider in page.locator(f".widget-hslider{outside_quiz}").all():
        readout, handle = slider.locator(".widget-readout"), slider.locator(".noUi-handle")
        _check_drives_output(page, slider, lambda: _move(
            page, ["ArrowRight"], ["ArrowLeft"], readout.inner_text, handle.focus))
        moved += 1
    # A focused, closed <select> does not take arrow keys in JupyterLab (they move between cells):
    # open it with a click, as a learner does, then choose with the keyboard.
    for dropdown in page.locator(f".widget-dropdown{outside_quiz}").all():
        select = dropdown.locator("select")
        _check_drives_output(page, dropdown, lambda: _move(
            page, ["ArrowDown", "Enter"], ["ArrowUp", "Enter"], select.input_value, select.click))
        moved += 1
    for box in page.locator(f".widget-checkbox{outside_quiz}").all():
        tick = box.locator("input")
        _check_drives_output(page, box, lambda: _move(
            page, ["Space"], ["Space"], lambda: str(tick.is_checked()), tick.focus))
        moved += 1
    for text in page.locator(f".widget-text{outside_quiz}").all():
        field = text.locator("input")
        _check_drives_output(page, text, lambda: (field.click(), field.press("End"), field.press("Backspace"),
                                                  field.type("1")))
        moved += 1
    return moved


def _answer_first_multiple_choice(page, stem: str) -> None:
    """Wrong answer: explanation, score unchanged. Try again, right answer: "Correct"."""
    from lora_mini import Quiz, Review, load_questions

    if stem == "12_review":  # one question at a time: walk with Next to the first multiple-choice one
        review = Review(seed=0)  # as the notebook shows it
        n = next(i for i, q in enumerate(review.questions) if q["type"] == "multiple_choice")
        card = review.go(n)
        for k in range(n):
            page.locator(".lora-review-next button, button.lora-review-next").first.click()
            page.wait_for_function(f"() => document.body.innerText.includes('question {k + 2} of')", timeout=20_000)
        shown = page.locator(".lora-quiz-card").first
    else:
        quiz = Quiz(load_questions(stem), seed=0)  # as the notebook shows it
        n, card = next((i, c) for i, c in enumerate(quiz.cards) if c.question["type"] == "multiple_choice")
        shown = page.locator(".lora-quiz-card").nth(n)
    wrong = next(k for k, a in enumerate(card.options) if not a["correct"])
    right = next(k for k, a in enumerate(card.options) if a["correct"])
    shown.scroll_into_view_if_needed()
    labels = shown.locator(".widget-radio-box label")
    assert labels.count() == len(card.options)
    feedback, score = shown.locator(".lora-quiz-feedback"), page.locator(".lora-quiz-score").first
    score_before = score.inner_text()

    labels.nth(wrong).click()
    shown.locator(".lora-quiz-check").click()
    page.wait_for_function("el => el.innerText.includes('Not quite')", arg=feedback.element_handle(), timeout=20_000)
    assert len(feedback.inner_text()) > len("Not quite.") + 20, "no explanation under the wrong answer"
    assert score.inner_text() == score_before, "a wrong first answer raised the score"

    shown.locator(".lora-quiz-retry").click()
    labels.nth(right).click()
    shown.locator(".lora-quiz-check").click()
    page.wait_for_function("el => el.innerText.includes('Correct')", arg=feedback.element_handle(), timeout=20_000)
    assert score.inner_text() == score_before, "a right second try counted as a first try"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_widgets_work_in_jupyterlab(lab, page, name, nbval_kernel):
    stem = name.removesuffix(".ipynb")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        _run_and_use(lab, page, name, stem, nbval_kernel)
    except Exception:
        page.screenshot(path=ARTIFACTS / f"{stem}-failed.png")
        print(f"JupyterLab's log:\n{lab.log_tail()}")
        raise
    assert not page.problems, "\n".join(page.problems)


def _run_and_use(lab, page, name: str, stem: str, kernel) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    controls = notebook_for_the_browser(lab, name, every_cell=kernel is not None)
    if kernel is not None:  # Run All in the kernel of nbval's first pass: the second pass
        kernel_id = lab.attach_kernel(Path(kernel.km.connection_file), name)
    open_notebook(page, lab, name)
    seconds = run_all_and_wait(page, name)
    errors = page.locator(ERROR_OUTPUT)
    assert errors.count() == 0, errors.first.inner_text()[-2000:]
    if kernel is not None:
        sessions = [s["kernel"]["id"] for s in lab.api("sessions") if s["path"] == name]
        assert sessions == [kernel_id], f"Run All ran in a kernel of JupyterLab's, not nbval's: {sessions}"
    try:  # widget views render asynchronously, after the kernel has gone idle
        page.wait_for_selector(".lora-quiz .widget-radio-box", state="attached", timeout=30_000)
    except PlaywrightTimeoutError:
        raise AssertionError("the quiz did not render as widgets within 30 s") from None
    with contextlib.suppress(PlaywrightTimeoutError):  # views render asynchronously: wait for all of them
        page.wait_for_function(f"""() => [...document.querySelectorAll('{CONTROLS}')]
            .filter(e => !e.closest('.lora-quiz')).length >= {controls}""", timeout=30_000)
    moved = _move_every_control(page)
    assert moved == controls, f"{moved} controls rendered and moved; the executed notebook shows {controls}"
    _answer_first_multiple_choice(page, stem)
    assert page.get_by_text("Error displaying widget").count() == 0
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
    page.wait_for_timeout(1000)  # the last plot finishes drawing
    first = page.locator(".widget-hslider, .widget-dropdown, .lora-quiz").first
    first.scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / f"{stem}.png")
    print(f"{name}: Run All Cells took {seconds:.1f} s in the browser; {moved} controls moved, quiz answered")


def test_review_renders_on_every_opening(lab, chromium):
    """The review once held every question at once (thousands of widget models) and failed to render in
    about one opening in six. Paged, it must render on every one of ten openings in a row: the first by a
    page load, the next four from the file browser of that page (each a new kernel and widget manager); the
    sixth again by a page load, the last four from its file browser."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (lab.root / "12_review.ipynb").write_text((ROOT / "notebooks" / "12_review.ipynb").read_text())  # the whole one
    failures, own = [], Pages(chromium)  # its own page: the first opening is a page load
    for attempt in range(10):
        if attempt == 5:  # the sixth opening: a page load again
            own.reset()
        page = own.get()
        try:
            open_notebook(page, lab, "12_review.ipynb")
            run_all_and_wait(page, "12_review.ipynb")
            page.wait_for_selector(".lora-quiz .lora-quiz-card", state="attached", timeout=30_000)
            page.locator("button.lora-review-next").first.click()
            page.wait_for_function("() => document.body.innerText.includes('question 2 of')", timeout=20_000)
            if page.get_by_text("Error displaying widget").count() or page.problems:
                failures.append(f"opening {attempt + 1}: {page.problems or 'Error displaying widget'}")
        except Exception as e:  # noqa: BLE001 - every failed opening is counted, then reported together
            page.screenshot(path=ARTIFACTS / f"12_review-opening-{attempt + 1}-failed.png")
            failures.append(f"opening {attempt + 1}: {type(e).__name__}: {str(e)[:300]}")
        own.release(lab)
    own.reset()
    assert not failures, "\n".join(failures)
