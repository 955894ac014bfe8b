"""Setup check: what is installed, and what to do about anything that is wrong.

    python -m lora_mini.doctor          # in a terminal: prints the report, exit status 1 if a problem is found
    python lora_mini/doctor.py          # the same, where importing lora_mini (and so torch) itself fails
    from lora_mini.doctor import check_setup; check_setup()   # a notebook's first cell

It reports, in a few lines: Python; torch (version, CPU or CUDA build, threads, import time); the
notebook stack's versions (jupyterlab, ipykernel, ipywidgets, widgetsnbextension, jupyterlab_widgets);
whether JupyterLab's widget manager is installed and enabled; and whether this Python (the notebook's
kernel) is the course's environment. Each problem comes with the one command or setting that fixes it.

In a notebook, ``check_setup()`` also shows a test widget and reports whether the frontend really
rendered it: the widget's view, once created, sets ``_view_count`` (ipywidgets' own view counter) in the
kernel. Until then a status line says it is waiting; after ``timeout_s`` seconds with the kernel idle and no
view, it says widgets do not render, with the fix. Where no widget manager exists at all, the test widget
itself falls back to an HTML message saying so. Nothing here ever raises: the check never fails a notebook.
"""
from __future__ import annotations

import html
import importlib.metadata as metadata
import json
import os
import platform
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository, when lora_mini runs from a checkout
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
TORCH = "2.13.0"
MIN_PYTHON = (3, 11)
NOTEBOOK_STACK = ("jupyterlab", "ipykernel", "ipywidgets", "widgetsnbextension", "jupyterlab_widgets")
WIDGET_MANAGER = "@jupyter-widgets/jupyterlab-manager"

__all__ = ["NOTEBOOK_CELL", "Check", "check_setup", "main", "report", "run_checks"]

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


@dataclass
class Check:
    """One line of the report. ``status``: "ok", "note" (works, could be better) or "problem"."""

    name: str
    status: str
    detail: str
    fix: str = ""  # the one command or setting that fixes it (problems and notes)


def _python() -> str:
    """This interpreter, quoted for a shell if its path has spaces."""
    exe = sys.executable or "python"
    return f'"{exe}"' if " " in exe else exe


def _pip(args: str) -> str:
    return f"{_python()} -m pip install {args}"


def _torch_requirement() -> str:
    """What requirements.txt asks for on this platform: the +cpu build on Linux x86-64, else the plain pin."""
    if sys.platform == "linux" and platform.machine() == "x86_64":
        return f"torch=={TORCH}+cpu --extra-index-url {CPU_INDEX}"
    return f"torch=={TORCH}"


def _pins(whole_tree: bool = False) -> dict[str, str]:
    """The versions requirements.txt pins for this platform ({} when not running from a checkout); with
    ``whole_tree``, also those binder/requirements.txt pins for what requirements.txt leaves to pip."""
    pins: dict[str, str] = {}
    for name in ["requirements.txt"] + ["binder/requirements.txt"] * whole_tree:
        try:
            from packaging.requirements import Requirement

            for line in (ROOT / name).read_text().splitlines():
                line = line.strip()
                if line and not line.startswith(("#", "-")):
                    req = Requirement(line)
                    if (req.marker is None or req.marker.evaluate()) and str(req.specifier).startswith("=="):
                        pins.setdefault(req.name.lower().replace("-", "_"), str(req.specifier)[2:].split("+")[0])
        except Exception:  # no checkout, no packaging, an unreadable file: compare with nothing
            continue
    return pins


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _major(version: str | None) -> int | None:
    try:
        return int(version.split(".")[0]) if version else None
    except ValueError:
        return None


# ---------------------------------------------------------------------------
# The checks: each returns one Check and never raises
# ---------------------------------------------------------------------------


def check_python() -> Check:
    version = platform.python_version()
    if sys.version_info[:2] < MIN_PYTHON:
        return Check("python", "problem", f"{version} at {sys.executable}; the course needs 3.11 or newer",
                     "python3.11 -m venv .venv && . .venv/bin/activate && pip install -r requirements.txt")
    return Check("python", "ok", f"{version} at {sys.executable}")


def _import_seconds(module: str) -> float | None:
    """Seconds to import ``module`` in a fresh Python (what the first cell of a notebook waits for)."""
    import subprocess

    start = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, timeout=600)
    except (OSError, subprocess.SubprocessError):
        return None
    return time.perf_counter() - start if done.returncode == 0 else None


def check_torch(time_import: bool = False) -> Check:
    try:
        import torch
    except Exception as err:  # e.g. a CUDA wheel whose libraries do not load
        last = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
        return Check("torch", "problem", f"import torch fails: {type(err).__name__}: {last[:200]}",
                     _pip(f"--force-reinstall --no-deps {_torch_requirement()}"))
    seconds = _import_seconds("torch") if time_import else None
    took = f", import torch takes {seconds:.1f} s in a fresh Python" if seconds is not None else ""
    cuda = torch.version.cuda
    build = "CPU build" if cuda is None else f"CUDA {cuda} build ({'a GPU is' if torch.cuda.is_available() else 'no GPU'} visible)"
    threads = torch.get_num_threads()
    detail = f"{torch.__version__}, {build}, {threads} thread{'s' * (threads != 1)}{took}"
    if torch.__version__.split("+")[0] != TORCH:
        return Check("torch", "problem", f"{detail}; the course pins {TORCH}", _pip(_torch_requirement()))
    if cuda is not None and sys.platform == "linux" and platform.machine() == "x86_64":
        return Check("torch", "note", f"{detail}; the course needs only the CPU build, a fraction of the size "
                     "(the CUDA build brings several GB of NVIDIA libraries): a fresh venv from requirements.txt "
                     "takes the CPU build", f"cd {ROOT} && rm -rf .venv && python3.11 -m venv .venv && "
                     ". .venv/bin/activate && pip install -r requirements.txt")
    return Check("torch", "ok", detail)


def check_notebook_stack() -> Check:
    versions = {name: _version(name) for name in NOTEBOOK_STACK}
    detail = " · ".join(f"{name} {v or 'missing'}" for name, v in versions.items())
    missing = [name for name, v in versions.items() if v is None]
    if missing:
        return Check("notebook stack", "problem", f"{detail} (in this Python)", _pip("-r requirements.txt"))
    majors = tuple(_major(versions[n]) for n in ("jupyterlab", "ipywidgets", "widgetsnbextension", "jupyterlab_widgets"))
    if majors[0] < 4 or majors[1:] != (8, 4, 3):  # ipywidgets 8 goes with widgetsnbextension 4, jupyterlab_widgets 3
        pins = _pins(whole_tree=True)
        want = " ".join(f"{n}=={pins.get(n, '')}".rstrip("=") for n in ("jupyterlab", "ipywidgets",
                                                                         "widgetsnbextension", "jupyterlab_widgets"))
        return Check("notebook stack", "problem", f"{detail}: the course needs JupyterLab 4 and ipywidgets 8 with "
                     "widgetsnbextension 4 and jupyterlab_widgets 3", _pip(want))
    off = [f"{n} {versions[n]} (pinned {pins_v})" for n, pins_v in _pins().items() if n in versions
           and versions[n] != pins_v]
    if off:
        return Check("notebook stack", "note", f"{detail}; not the versions the course pins: {', '.join(off)}",
                     _pip("-r requirements.txt"))
    return Check("notebook stack", "ok", detail)


def _disabled_in_page_config(extension: str) -> Path | None:
    """The page_config.json that disables ``extension`` in JupyterLab, if one does."""
    try:
        from jupyter_core.paths import jupyter_config_path
    except ImportError:
        return None
    for folder in jupyter_config_path():
        path = Path(folder) / "labconfig" / "page_config.json"
        try:
            disabled = json.loads(path.read_text()).get("disabledExtensions", {})
        except (OSError, ValueError, AttributeError):
            continue
        if (disabled.get(extension) if isinstance(disabled, dict) else extension in disabled):
            return path
    return None


def check_widget_manager() -> Check:
    """JupyterLab's widget manager, the frontend half of ipywidgets: installed here, and not disabled."""
    try:
        from jupyter_core.paths import jupyter_path

        folders = [Path(p) / WIDGET_MANAGER for p in jupyter_path("labextensions")]
    except ImportError:
        folders = []
    found = next((f for f in folders if (f / "package.json").is_file()), None)
    if found is None:
        pin = _pins(whole_tree=True).get("jupyterlab_widgets")
        return Check("widget manager", "problem", f"{WIDGET_MANAGER} is not installed: widgets cannot show",
                     _pip(f"jupyterlab_widgets=={pin}" if pin else "jupyterlab_widgets"))
    disabled_by = _disabled_in_page_config(WIDGET_MANAGER)
    if disabled_by is not None:
        return Check("widget manager", "problem", f"{WIDGET_MANAGER} is disabled (by {disabled_by}): widgets "
                     "cannot show", f"jupyter labextension enable {WIDGET_MANAGER}")
    return Check("widget manager", "ok", f"{WIDGET_MANAGER} installed and enabled")


def _course_distribution():
    """The lora-mini distribution installed in this Python's environment (sys.prefix), or None."""
    prefix = Path(sys.prefix).resolve()
    for dist in metadata.distributions(name="lora-mini"):
        try:
            if prefix in Path(str(dist.locate_file(""))).resolve().parents:
                return dist
        except OSError:
            continue
    return None


def check_environment() -> Check:
    """Does this Python (the notebook's kernel) have the course installed, and is that the lora_mini it imports?"""
    here = Path(__file__).resolve().parent
    venv = ROOT / ".venv"
    venv_python = venv / "Scripts" / "python.exe" if os.name == "nt" else venv / "bin" / "python"
    pick_kernel = (f"{venv_python} -m ipykernel install --user --name lora-mini --display-name "
                   "'Python (lora-mini)', then Kernel > Change Kernel > Python (lora-mini)") if venv.is_dir() else \
        f"cd {ROOT} && {_pip('-r requirements.txt')}"
    dist = _course_distribution()
    if dist is None:
        return Check("environment", "problem", f"{sys.executable} imports lora_mini from {here}, but the course "
                     f"is not installed in its environment ({sys.prefix})", pick_kernel)
    source = here.parent
    try:
        url = json.loads(dist.read_text("direct_url.json") or "{}").get("url", "")
        if url.startswith("file://"):
            from urllib.parse import unquote, urlparse

            source = Path(unquote(urlparse(url).path)).resolve()
    except (OSError, ValueError):
        pass
    if source not in here.parents:
        return Check("environment", "problem", f"lora_mini comes from {here}, but this environment installed "
                     f"the course from {source}", pick_kernel)
    where = f"the course installed from {source}" if source == ROOT else "the course installed here"
    return Check("environment", "ok", f"this Python is the course's environment ({sys.prefix}, {where})")


def run_checks(time_import: bool = False) -> list[Check]:
    """Every check, in the order of the report; never raises. ``time_import``: time ``import torch`` in a
    fresh Python too (a few seconds; the terminal report does, the notebook's does not)."""
    checks = []
    for name, check in [("python", check_python), ("torch", lambda: check_torch(time_import)),
                        ("notebook stack", check_notebook_stack), ("widget manager", check_widget_manager),
                        ("environment", check_environment)]:
        try:
            checks.append(check())
        except Exception as err:  # a check that breaks is reported, never raised
            checks.append(Check(name, "note", f"could not check: {err!r}"))
    return checks


# ---------------------------------------------------------------------------
# Reports: text for a terminal, HTML in a notebook
# ---------------------------------------------------------------------------

LABEL = {"ok": "ok", "note": "note", "problem": "PROBLEM"}


def report(checks: list[Check]) -> str:
    lines = ["lora-mini setup check"]
    for c in checks:
        lines.append(f"  {LABEL[c.status]:<8} {c.name:<15} {c.detail}")
        if c.fix:
            lines.append(f"  {'':<8} {'':<15} fix: {c.fix}")
    problems = sum(c.status == "problem" for c in checks)
    lines.append("All good." if not problems else f"{problems} problem{'s' * (problems > 1)}: run the fix under each.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    checks = run_checks(time_import=True)
    print(report(checks))
    return 1 if any(c.status == "problem" for c in checks) else 0


_COLOR = {"ok": "#009E73", "note": "#E69F00", "problem": "#D55E00"}  # Okabe-Ito green, orange, vermillion


def _html_line(status: str, name: str, detail: str, fix: str = "", cls: str = "") -> str:
    fix_html = f"<br>&nbsp;&nbsp;&nbsp;&nbsp;fix: <code>{html.escape(fix)}</code>" if fix else ""
    return (f"<div class='lora-doctor-{status} {cls}'><b style='color:{_COLOR[status]}'>{LABEL[status]}</b> "
            f"<b>{html.escape(name)}</b>: {html.escape(detail)}{fix_html}</div>")


WIDGETS_FIX = ("open the notebook in JupyterLab 4 started from the course's environment "
               "(. .venv/bin/activate && jupyter lab notebooks/); if it still fails: "
               f"jupyter labextension enable {WIDGET_MANAGER}, then reload the page")


class _Probe:
    """The test widget, shown with an HTML fallback for frontends that have no widget manager at all."""

    def __init__(self, widget) -> None:
        self.widget = widget

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        fallback = _html_line("problem", "widgets", "this frontend has no widget manager, so the test widget "
                              "shows as this text and the course's sliders and quizzes will not show", WIDGETS_FIX)
        bundle = self.widget._repr_mimebundle_() or {}
        return {**bundle, "text/html": fallback, "text/plain": "[test widget: shows only where widgets work]"}


def _status_line(status: str, detail: str, fix: str = ""):
    """The widget test's status line (HTML, shown and updated by display_id: it needs no widget manager)."""
    from IPython.display import HTML

    return HTML(_html_line(status, "widgets", detail, fix, cls="lora-doctor-status"))


class _Busy:
    """Whether a cell is running, from IPython's pre/post_run_cell events (a widget's view can only report
    back to the kernel between cells, so the wait for it counts idle time only)."""

    running = False
    _hooked: set[int] = set()

    @classmethod
    def hook(cls, ip) -> None:
        cls.running = True  # called from inside a cell
        if id(ip) not in cls._hooked:
            ip.events.register("pre_run_cell", lambda *_: setattr(cls, "running", True))
            ip.events.register("post_run_cell", lambda *_: setattr(cls, "running", False))
            cls._hooked.add(id(ip))


def _watch_widget(probe, display_id: str, timeout_s: float, give_up_s: float = 900.0) -> None:
    """Update the status line when the view reports; after ``timeout_s`` idle seconds without one, say so."""
    from IPython.display import update_display

    shown = time.monotonic()
    lock = threading.Lock()
    state = {"rendered": False}

    def on_view(change) -> None:
        if (change["new"] or 0) >= 1:
            with lock:
                first = not state["rendered"]
                state["rendered"] = True
            if first:
                update_display(_status_line("ok", "the frontend rendered the test widget (the kernel heard back "
                                            f"{time.monotonic() - shown:.1f} s later, when it was next free)"),
                               display_id=display_id)

    probe.observe(on_view, names="_view_count")

    def wait() -> None:
        idle, last = 0.0, time.monotonic()
        while not state["rendered"] and time.monotonic() - shown < give_up_s:
            time.sleep(0.25)
            now = time.monotonic()
            idle, last = idle + (0.0 if _Busy.running else now - last), now
            if idle >= timeout_s:
                with lock:
                    if state["rendered"]:
                        return
                    update_display(_status_line(
                        "problem", f"no view of the test widget was created within {timeout_s:.0f} s of the "
                        "kernel going idle: sliders and quizzes will not show (look for 'Error displaying "
                        "widget' below this line)", WIDGETS_FIX), display_id=display_id)
                return

    threading.Thread(target=wait, name="lora-mini-widget-check", daemon=True).start()


def check_setup(timeout_s: float = 5.0) -> None:
    """The setup check in a notebook: the report, a test widget, and a line saying whether it rendered.

    Never raises and never blocks: the widget's line updates itself when its view reports back, or after
    ``timeout_s`` seconds of idle kernel without one.
    """
    try:
        checks = run_checks()
        from IPython import get_ipython
        from IPython.display import HTML, display

        ip = get_ipython()
        if ip is None or not hasattr(ip, "kernel"):  # a terminal: no frontend to test
            print(report(checks))
            return
        display(HTML("<div class='lora-doctor'><b>Setup check</b><br>"
                     + "".join(_html_line(c.status, c.name, c.detail, c.fix) for c in checks) + "</div>"))
        import ipywidgets as W

        probe = W.HTML(value=_html_line("ok", "test widget", "this box is an ipywidget, drawn by the frontend"))
        probe.add_class("lora-doctor-probe")
        probe._view_count = 0  # ipywidgets' view counter: each view the frontend creates adds one, in the kernel
        _Busy.hook(ip)
        display_id = f"lora-doctor-{os.getpid()}-{time.monotonic_ns()}"
        display(_status_line("note", "waiting for the frontend to render the test widget below…"),
                display_id=display_id)
        display(_Probe(probe))
        _watch_widget(probe, display_id, timeout_s)
    except Exception as err:  # the check must never fail the notebook
        print(f"lora-mini setup check could not finish: {type(err).__name__}: {err}")


if __name__ == "__main__":
    sys.exit(main())
