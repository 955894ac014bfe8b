"""Drive JupyterLab in headless Chromium: start a server, open a notebook, run it, move its widgets.

Used by tests/test_browser.py and scripts/readme_pictures.py. Chromium comes from Debian
(`apt-get install chromium`), driven by Python Playwright; `playwright install` is never needed.
"""
from __future__ import annotations

import ast
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ENABLE_HINT = (
    "browser tests need Debian's Chromium and Python Playwright: "
    "`apt-get update && apt-get install -y chromium` and `pip install -r requirements-dev.txt`"
)

# JupyterLab settings for a test run: every cell in the DOM (no windowing, so outputs of cells
# off screen can be read), the notebook's own kernel started without asking, no news or update checks.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {
        "windowingMode": "none",
        "autoStartDefaultKernel": True,
    },
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
}

ERROR_OUTPUT = ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error']"  # a traceback

# The state of a Run All: kernel idle or not, and each code cell's prompt ("[3]:", "[*]:" or "[ ]:").
RUN_STATE = """() => ({
  idle: document.querySelector(".jp-Notebook-ExecutionIndicator[data-status='idle']") !== null,
  prompts: [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')].map(p => p.textContent.trim()),
})"""


def browser_missing() -> str | None:
    """Why browser tests cannot run here (a message with the fix), or None if they can."""
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} not found; {ENABLE_HINT}"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return f"Python playwright is not installed; {ENABLE_HINT}"
    return None


def browser_required() -> bool:
    """In CI (CI=true) or with LORA_MINI_REQUIRE_BROWSER=1 the browser tests must run, never skip."""
    return os.environ.get("CI", "").lower() in ("1", "true") or os.environ.get("LORA_MINI_REQUIRE_BROWSER") == "1"


def require_browser() -> None:
    """Skip the calling test when Chromium or playwright is missing (fail instead where they are required)."""
    import pytest

    missing = browser_missing()
    if missing:
        (pytest.fail if browser_required() else pytest.skip)(missing)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """``jupyter lab --no-browser`` on a free loopback port with a token, serving a copy of ``notebooks``.

    ``jupyter`` is the command that starts it (default: this Python's ``-m jupyter``); the kernel
    then runs in the Python that JupyterLab runs in, with one CPU thread, as on Binder. ``extra_env`` adds
    environment variables; quiz progress goes to a file in the server's own folder, never the home.
    A kernel started elsewhere can be given to a notebook (attach_kernel): jupyter_server's external kernels.
    """

    def __init__(self, notebooks: Path, jupyter: list[str] | None = None, threads: int = 1,
                 extra_env: dict[str, str] | None = None) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="lora-mini-lab-"))
        self.root = self.workdir / "notebooks"
        shutil.copytree(notebooks, self.root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        self.port = free_port()
        self.token = os.urandom(16).hex()
        self.url = f"http://127.0.0.1:{self.port}"
        settings = self.workdir / "settings"
        for name, value in LAB_SETTINGS.items():
            (settings / name).parent.mkdir(parents=True, exist_ok=True)
            (settings / name).write_text(json.dumps(value))
        n = str(threads)
        env = dict(os.environ, OMP_NUM_THREADS=n, MKL_NUM_THREADS=n, OPENBLAS_NUM_THREADS=n,
                   JUPYTERLAB_SETTINGS_DIR=str(settings), JUPYTERLAB_WORKSPACES_DIR=str(self.workdir / "ws"),
                   LORA_MINI_PROGRESS=str(self.workdir / "progress.json"))
        env.update(extra_env or {})
        self.external = self.workdir / "external_kernels"  # connection files of kernels it did not start
        self.external.mkdir()
        command = [*(jupyter or [sys.executable, "-m", "jupyter"]), "lab", "--no-browser",
                   "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
                   f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}",
                   "--ServerApp.allow_external_kernels=True", f"--ServerApp.external_connection_dir={self.external}"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.append("--allow-root")  # CI containers run as root
        self.log = self.workdir / "lab.log"
        self.process = subprocess.Popen(command, env=env, stdout=self.log.open("w"), stderr=subprocess.STDOUT)
        self._wait_until_up()

    def _wait_until_up(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=5)
                return
            except OSError:
                time.sleep(0.5)
        self.close()
        raise RuntimeError(f"jupyter lab did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def api(self, path: str, method: str = "GET", body: dict | None = None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.url}/api/{path}?token={self.token}", method=method, data=data,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = response.read()
        return json.loads(answer) if answer else None

    def attach_kernel(self, connection_file: Path, name: str) -> str:
        """Make a running kernel, started elsewhere (its connection file), the kernel of notebook ``name``: a
        session for ``name`` on it, so that JupyterLab opens the notebook on that kernel. Its id. The server
        forgets it when the session ends (shut_down_kernels), and never stops it: its owner does."""
        before = {kernel["id"] for kernel in self.api("kernels")}
        # A new file each time, never deleted while the server runs: it reads a file once, and keeps knowing it
        # after the session ends (a file removed then makes its kernel listing fail).
        shutil.copyfile(connection_file, self.external / f"{Path(name).stem}-{os.urandom(4).hex()}.json")
        kernel_id = next((kernel["id"] for kernel in self.api("kernels") if kernel["id"] not in before), None)
        if kernel_id is None:
            raise RuntimeError("JupyterLab's server did not list the kernel as an external kernel "
                               f"(--ServerApp.allow_external_kernels):\n{self.log_tail()}")
        self.api("sessions", "POST", {"path": name, "name": name, "type": "notebook", "kernel": {"id": kernel_id}})
        return kernel_id

    def shut_down_kernels(self) -> None:
        """End every notebook session, so kernels of notebooks already tested free their memory."""
        for session in self.api("sessions"):
            self.api(f"sessions/{session['id']}", method="DELETE")

    def notebook_url(self, name: str) -> str:
        return f"{self.url}/lab/tree/{name}?reset&token={self.token}"

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "Lab":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def launch_chromium(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


def run_all(page) -> None:
    page.click(".lm-MenuBar-itemLabel:text-is('Run')")
    page.click(".lm-Menu-itemLabel:text-is('Run All Cells')")


def open_notebook(page, lab: Lab, name: str) -> None:
    """Open notebook ``name`` and wait for its kernel: on a blank page, a JupyterLab page load with a fresh
    workspace; on a page showing JupyterLab with no notebook open (close_notebook), a double-click in its file
    browser, as a learner opens the next notebook (here about 2.5 s of CPU against 8 s for a page load)."""
    in_lab = page.url.startswith(lab.url) and page.locator(".jp-DirListing").count()
    if in_lab and not page.locator(".jp-NotebookPanel").count():
        page.locator(".jp-DirListing-item", has=page.get_by_text(name, exact=True)).dblclick()
    else:
        page.goto(lab.notebook_url(name))
    page.wait_for_selector(".jp-Notebook .jp-CodeCell", timeout=120_000)
    page.wait_for_selector(".jp-StatusBar-TextItem:has-text('| Idle')", timeout=120_000)  # kernel connected
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)


def close_notebook(page, lab: Lab) -> None:
    """File > Close Tab, discarding the run's outputs, and end every kernel: the page is ready for the next one."""
    from playwright.sync_api import Error as PlaywrightError

    if page.locator(".jp-NotebookPanel").count():
        page.click(".lm-MenuBar-itemLabel:text-is('File')")
        page.click(".lm-Menu-itemLabel:text-is('Close Tab')")
        discard = page.locator(".jp-Dialog button:has-text('Discard')")  # "Save your work?": the cells ran
        deadline = time.monotonic() + 30
        while page.locator(".jp-NotebookPanel").count():
            if discard.count():
                with contextlib.suppress(PlaywrightError):  # the dialog may close between count and click
                    discard.click(timeout=2_000)
            if time.monotonic() > deadline:
                raise TimeoutError("the notebook's tab did not close within 30 s")
            page.wait_for_timeout(200)
    lab.shut_down_kernels()
    page.evaluate("0")  # a round trip: console messages the shutdown caused arrive now, not in the next test


def run_all_and_wait(page, name: str, timeout_s: float = 300) -> float:
    """Run > Run All Cells in the notebook on screen and wait until every cell has run; seconds taken.

    Raises if the kernel goes idle with cells left unrun for 20 s (an error stops Run All), or on timeout.
    """
    start = time.monotonic()
    run_all(page)
    stalled_since, clicks = None, 1
    while time.monotonic() - start < timeout_s:
        page.wait_for_timeout(500)
        state = page.evaluate(RUN_STATE)
        numbered = [p.startswith("[") and p[1:-2].isdigit() for p in state["prompts"]]
        if state["idle"] and numbered and all(numbered):
            return time.monotonic() - start
        if state["idle"] and not any("*" in p for p in state["prompts"]):
            stalled_since = stalled_since or time.monotonic()
            if not any(numbered) and clicks < 3 and time.monotonic() - stalled_since > 5:
                run_all(page)  # nothing ran: the click came before the kernel took requests
                stalled_since, clicks = None, clicks + 1
            elif time.monotonic() - stalled_since > 20:
                errors = page.locator(ERROR_OUTPUT).all_inner_texts()
                raise RuntimeError(f"{name}: the kernel is idle but cells are left unrun: {state['prompts']}\n"
                                   + "\n".join(e[-2000:] for e in errors))
        else:
            stalled_since = None
    raise TimeoutError(f"{name}: Run All Cells did not finish in {timeout_s:.0f} s: {page.evaluate(RUN_STATE)}")


def open_and_run_all(page, lab: Lab, name: str, timeout_s: float = 300) -> float:
    """Open notebook ``name`` (see open_notebook), Run > Run All Cells, wait until done; seconds taken."""
    open_notebook(page, lab, name)
    return run_all_and_wait(page, name, timeout_s)


# ---------------------------------------------------------------------------------------------------------
# What a browser test runs of a notebook in a new kernel (nbval runs every cell of it): only what the controls and
# the quiz need, the cells up to the last one that shows a control, then the quiz. (On nbval's kernel: every cell.)
# Which cells show what is read from the committed, executed notebook: each widget view in a cell's outputs
# names a model in the notebook's saved widget state, and the models under it are what the view shows.

VIEW_MIME = "application/vnd.jupyter.widget-view+json"
STATE_MIME = "application/vnd.jupyter.widget-state+json"
# What the browser tests move: sliders, selectors, check boxes and text boxes (outside a quiz).
CONTROL_MODELS = {"IntSliderModel", "FloatSliderModel", "FloatLogSliderModel", "SelectionSliderModel",
                  "DropdownModel", "CheckboxModel", "TextModel"}


def _referenced(value):
    """The model ids a widget's state refers to ("IPY_MODEL_<id>", in lists and dicts too)."""
    if isinstance(value, str) and value.startswith("IPY_MODEL_"):
        yield value.removeprefix("IPY_MODEL_")
    elif isinstance(value, (list, dict)):
        for v in value.values() if isinstance(value, dict) else value:
            yield from _referenced(v)


def shown_widgets(notebook: dict, cell: dict) -> tuple[int, bool]:
    """(how many controls outside a quiz, whether a quiz) the cell's saved outputs show."""
    state = notebook["metadata"].get("widgets", {}).get(STATE_MIME, {}).get("state", {})
    controls, quiz, seen = 0, False, set()
    todo = [(o["data"][VIEW_MIME]["model_id"], False) for o in cell.get("outputs", []) if VIEW_MIME in o.get("data", {})]
    while todo:
        model_id, in_quiz = todo.pop()
        if model_id in seen or model_id not in state:
            continue
        seen.add(model_id)
        model = state[model_id]
        in_quiz = in_quiz or any(c.startswith("lora-quiz") for c in model["state"].get("_dom_classes", []))
        quiz = quiz or in_quiz
        controls += model["model_name"] in CONTROL_MODELS and not in_quiz
        todo += [(child, in_quiz) for child in _referenced(model["state"])]
    return controls, quiz


def _names(cell: dict) -> tuple[set[str] | None, set[str]]:
    """(names a code cell binds at the top level, names it reads): enough to find the import a quiz cell needs.
    For a cell that is not plain Python (``x = !ls``, ``obj?``): (None, set()), "may bind anything"."""
    try:
        tree = ast.parse("\n".join(ln for ln in "".join(cell["source"]).splitlines()
                                   if not ln.lstrip().startswith(("%", "!"))))
    except SyntaxError:
        return None, set()
    bound = {(a.asname or a.name).split(".")[0] for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))
             for a in n.names}
    bound |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    bound |= {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    return bound, {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def browser_copy(notebook: dict, every_cell: bool = False) -> tuple[dict, int]:
    """(the notebook cut for the browser, the number of controls it shows): its code cells up to the last one
    that shows a control, then those that show a quiz (and the earlier ones that define what they call); outputs
    and the saved widget state removed. No markdown: rendering its math is work for Chromium that tests nothing
    here. Not run, so not checked in the browser: the cells after the last control (tqdm's progress bars in 01 and 02
    among them; nbval runs them). ``every_cell``: all code cells, as Run All runs them (a second pass in nbval's kernel,
    conftest.py; nbval's skip and raises-exception markers do not apply there, and no lesson uses them)."""
    cells = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    shown = [shown_widgets(notebook, c) for c in cells]
    last = len(cells) - 1 if every_cell else max((i for i, (controls, _) in enumerate(shown) if controls), default=-1)
    quizzes = [i for i, (_, quiz) in enumerate(shown) if quiz and i > last]
    needed = set().union(*(_names(cells[i])[1] for i in quizzes))  # e.g. show_review, imported in an earlier cell
    between = {i: _names(cells[i])[0] for i in range(last + 1, max(quizzes, default=0))}
    keep = sorted({*range(last + 1), *quizzes, *(i for i, bound in between.items() if bound is None or bound & needed)})
    if not any(shown[i][1] for i in keep):
        raise ValueError("the notebook's saved outputs show no quiz: execute it (scripts/execute_notebooks.py)")
    metadata = {k: v for k, v in notebook["metadata"].items() if k != "widgets"}  # the saved views: none left
    copy = {**notebook, "metadata": metadata, "cells": [{**cells[i], "outputs": [], "execution_count": None} for i in keep]}
    return copy, sum(shown[i][0] for i in keep)


def output_state(cell) -> str:
    """What a learner sees in a cell's widget outputs: their text and the images they show."""
    return cell.evaluate("""c => [...c.querySelectorAll('.widget-output')].map(o =>
        o.innerText + [...o.querySelectorAll('img')].map(i => i.src.slice(-200)).join('|')).join('\\n')""")


def wait_for_change(page, read, before: str, timeout_s: float = 60) -> str:
    """Poll ``read()`` until it differs from ``before``; return the new value (or ``before`` on timeout)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        page.wait_for_timeout(250)
        now = read()
        if now != before and now.strip():
            return now
    return before
