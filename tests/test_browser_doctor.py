"""The setup check's widget test, in JupyterLab in headless Chromium: both when widgets render and when
JupyterLab's widget manager is absent (disabled through a page_config.json on JUPYTER_CONFIG_PATH).

The notebook is written by the test to a temporary folder: notebook 00's first cell (doctor.NOTEBOOK_CELL,
the setup check), then a cell that keeps the kernel busy for a few seconds, as the rest of a notebook does
under Run All. The check must never fail a cell, must not cry wolf while the kernel is busy, and must
end with the right verdict on its status line. Select with `-m browser`; skips without Chromium like
tests/test_browser.py (fails instead in CI).
"""
from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path

import pytest

from labdriver import ERROR_OUTPUT, Lab, open_and_run_all
from lora_mini.doctor import NOTEBOOK_CELL

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts" / "browser"
BUSY_S = 8  # longer than check_setup's 5 s timeout: a busy kernel must not be taken for a missing view

STATUS = ".lora-doctor-status"


def _notebook(folder: Path) -> str:
    def code(source: str) -> dict:
        return {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": source}

    cells = [code(NOTEBOOK_CELL), code(f"import time\ntime.sleep({BUSY_S})\nprint('busy cell done')")]
    nb = {"cells": cells, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                      "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    (folder / "setup_check.ipynb").write_text(json.dumps(nb))
    return "setup_check.ipynb"


# Every text the status line shows, in order, recorded in the page as it changes.
RECORD_STATUS = """
window.__doctorStatuses = [];
new MutationObserver(() => {
  for (const e of document.querySelectorAll('.lora-doctor-status')) {
    const seen = window.__doctorStatuses;
    if (seen[seen.length - 1] !== e.innerText) seen.push(e.innerText);
  }
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


@contextlib.contextmanager
def _run(chromium, extra_env: dict | None, shot: str):
    """Run the notebook in JupyterLab and hand over the page, every cell run without an error."""
    with tempfile.TemporaryDirectory() as tmp:
        name = _notebook(Path(tmp))  # before Lab(), which serves a copy of the folder
        with Lab(Path(tmp), extra_env=extra_env) as lab:
            page = chromium.new_page(viewport={"width": 1280, "height": 900})
            page.problems = []
            page.on("console", lambda m: m.type == "error" and page.problems.append(f"console: {m.text}"))
            page.add_init_script(RECORD_STATUS)
            try:
                open_and_run_all(page, lab, name, timeout_s=180)
                assert page.locator(ERROR_OUTPUT).count() == 0, page.locator(ERROR_OUTPUT).first.inner_text()
                assert "busy cell done" in page.locator(".jp-Notebook").inner_text(), "the cell after the check did not run"
                yield page
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=ARTIFACTS / f"{shot}.png")
            except Exception:
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=ARTIFACTS / f"{shot}-failed.png")
                print(f"JupyterLab's log:\n{lab.log_tail()}")
                raise
            finally:
                page.close()


def _wait_for_status(page, words: str, timeout_ms: int = 30_000) -> str:
    page.wait_for_function(f"() => [...document.querySelectorAll('{STATUS}')].some(e => e.innerText.includes({words!r}))",
                           timeout=timeout_ms)
    return page.locator(STATUS).inner_text()


def test_setup_check_reports_a_rendered_widget(chromium):
    with _run(chromium, None, "doctor-widgets") as page:
        status = _wait_for_status(page, "rendered the test widget")
        assert status.startswith("ok"), status
        assert page.locator(".lora-doctor-probe").is_visible(), "the test widget is not on the page"
        report = page.locator(".lora-doctor").inner_text()
        for line in ("python", "torch", "2.13.0", "CPU build", "thread", "jupyterlab", "ipywidgets",
                     "jupyterlab_widgets", "widget manager", "environment"):
            assert line in report, f"{line!r} missing from the report:\n{report}"
        assert "PROBLEM" not in report, report
        assert page.get_by_text("Error displaying widget").count() == 0
        assert page.get_by_text("no widget manager").count() == 0, "the fallback text showed beside the widget"
        assert not page.problems, "\n".join(page.problems)
        seen = page.evaluate("window.__doctorStatuses")
        assert seen[0].startswith("note") and "waiting" in seen[0], seen
        assert not any("PROBLEM" in text for text in seen), f"a false alarm while the kernel was busy: {seen}"


def test_setup_check_reports_a_missing_widget_manager(chromium, tmp_path):
    config = tmp_path / "labconfig"
    config.mkdir()
    (config / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyter-widgets/jupyterlab-manager": True}}))
    with _run(chromium, {"JUPYTER_CONFIG_PATH": str(tmp_path)}, "doctor-no-widgets") as page:
        # At once, with no kernel round trip: the test widget's HTML fallback, since nothing can draw it.
        assert page.get_by_text("this frontend has no widget manager").count() == 1
        assert page.locator(".lora-doctor-probe").count() == 0
        # The static check sees the same page_config and names the fix.
        report = page.locator(".lora-doctor").inner_text()
        assert "widget manager" in report and "disabled" in report, report
        assert "jupyter labextension enable @jupyter-widgets/jupyterlab-manager" in report, report
        # After the kernel has been idle for the timeout, the status line turns into the problem and its fix.
        status = _wait_for_status(page, "no view of the test widget")
        assert status.startswith("PROBLEM"), status
        assert "fix:" in status and "jupyter lab notebooks/" in status, status
