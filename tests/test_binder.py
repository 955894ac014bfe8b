"""Binder's path works: scripts/simulate_binder.sh builds an environment from binder/ alone, the way
repo2docker would, and notebook 00 runs and responds in JupyterLab from it (tests/test_browser.py).

The simulation is marked `browser` and `binder`; it skips like the browser tests on a machine without
Chromium, never in CI.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

import labdriver

ROOT = Path(__file__).resolve().parent.parent
BINDER_NOTEBOOK = "00_why_lora"  # its browser test runs in the simulation (and not again outside it: conftest.py)


def test_binder_requirements_pin_the_cpu_build_of_torch():
    lines = [ln.strip() for ln in (ROOT / "binder" / "requirements.txt").read_text().splitlines()]
    reqs = [ln for ln in lines if ln and not ln.startswith("#")]
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in reqs
    assert "torch==2.13.0+cpu" in reqs
    assert reqs[-1] == "-e ."
    pinned = [r for r in reqs if not r.startswith("-")]
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[^=<>~ ]+", r) for r in pinned), "every requirement pinned exactly"
    assert (ROOT / "binder" / "runtime.txt").read_text().strip() == "python-3.11"


def test_binder_pins_what_requirements_txt_pins():
    """Binder runs the course with the versions a learner installs (torch as its +cpu build)."""
    linux_x86_64 = {"sys_platform": "linux", "platform_machine": "x86_64"}  # Binder's platform

    def pins(path):
        pinned = {}
        for ln in map(str.strip, (ROOT / path).read_text().splitlines()):
            if ln and not ln.startswith(("#", "-")):
                req = Requirement(ln)
                if req.marker is None or req.marker.evaluate(linux_x86_64):
                    pinned[req.name] = str(req.specifier).removeprefix("==")
        return pinned

    course, binder = pins("requirements.txt"), pins("binder/requirements.txt")
    assert course, "requirements.txt pins nothing"
    assert course["torch"] == "2.13.0+cpu"
    for package, version in course.items():
        assert binder.get(package) == version, package


@pytest.mark.browser
@pytest.mark.binder
def test_binder_simulation_runs_its_notebook():
    labdriver.require_browser()
    # PIP_COMPILE=0: pip writes no .pyc files for the ~130 packages (compiling torch's and transformers' sources
    # alone took 16 s of CPU here); Python compiles what JupyterLab and the kernel import, when they import it.
    # PYTEST_ADDOPTS: its one browser test in one process, not in pyproject's parallel workers.
    env = dict(os.environ, TEST_PYTHON=sys.executable, PIP_COMPILE="0", PYTEST_ADDOPTS="-n 0")
    run = subprocess.run(["bash", str(ROOT / "scripts" / "simulate_binder.sh"), BINDER_NOTEBOOK], env=env,
                         capture_output=True, text=True, timeout=1500)
    print(run.stdout[-4000:], run.stderr[-4000:])
    assert run.returncode == 0
    assert "torch 2.13.0+cpu" in run.stdout
    pinned_pip = re.search(r"\bpip==([\d.]+)", (ROOT / "scripts" / "simulate_binder.sh").read_text()).group(1)
    assert f"| pip {pinned_pip} |" in run.stdout, "the environment does not have the pip the script pins"
    assert re.search(r"\b1 passed\b", run.stdout)


def test_readme_badge_opens_notebook_00_in_jupyterlab():
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\(https://mybinder\.org/v2/gh/([\w.-]+/[\w.-]+)/HEAD\?urlpath=lab/tree/([^)]+)\)", readme)
    assert links, "no Launch on Binder badge in README.md"
    for _, path in links:
        assert (ROOT / path).is_file(), f"the badge opens {path}, which is not in the repository"
    assert "On a fork" in readme


def test_without_chromium_browser_tests_skip_locally_and_fail_in_ci(monkeypatch):
    monkeypatch.setattr(labdriver, "CHROMIUM", "/nonexistent/chromium")
    assert "apt-get install -y chromium" in labdriver.browser_missing()
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("LORA_MINI_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y chromium"):
        labdriver.require_browser()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="apt-get install -y chromium"):
        labdriver.require_browser()
