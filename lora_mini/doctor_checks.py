"""The setup check's checks: Python, torch, the notebook stack, JupyterLab's widget manager, this environment.

Each check returns one :class:`Check` and never raises; :func:`report` writes them for a terminal. Standard
library only, so that ``python lora_mini/doctor.py`` runs them where importing lora_mini (and so torch) fails.
"""
from __future__ import annotations

import importlib.metadata as metadata
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository, when lora_mini runs from a checkout
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
TORCH = "2.13.0"
MIN_PYTHON = (3, 11)
NOTEBOOK_STACK = ("jupyterlab", "ipykernel", "ipywidgets", "widgetsnbextension", "jupyterlab_widgets")
WIDGET_MANAGER = "@jupyter-widgets/jupyterlab-manager"


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
# The report for a terminal (the notebook's: lora_mini.doctor_widget)
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
