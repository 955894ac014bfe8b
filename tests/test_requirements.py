"""requirements.txt resolves to the right torch on every platform, checked statically (CI runs on Linux
x86-64 only): the environment markers are evaluated with packaging for each platform's values.

Linux x86-64 gets the CPU build (``torch==2.13.0+cpu`` from PyTorch's CPU index, given as an *extra*
index so PyPI stays the main one); macOS, Windows and Linux arm64 get PyPI's plain ``torch==2.13.0``,
which is CPU-only there. The same public version everywhere.
"""
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
CPU_INDEX = "https://download.pytorch.org/whl/cpu"

# What `packaging.markers.default_environment()` reports on each platform (the keys the markers may use).
PLATFORMS = {
    "linux/x86_64": {"sys_platform": "linux", "platform_machine": "x86_64", "platform_system": "Linux", "os_name": "posix"},
    "linux/aarch64": {"sys_platform": "linux", "platform_machine": "aarch64", "platform_system": "Linux", "os_name": "posix"},
    "darwin/arm64": {"sys_platform": "darwin", "platform_machine": "arm64", "platform_system": "Darwin", "os_name": "posix"},
    "darwin/x86_64": {"sys_platform": "darwin", "platform_machine": "x86_64", "platform_system": "Darwin", "os_name": "posix"},
    "win32/AMD64": {"sys_platform": "win32", "platform_machine": "AMD64", "platform_system": "Windows", "os_name": "nt"},
    "win32/ARM64": {"sys_platform": "win32", "platform_machine": "ARM64", "platform_system": "Windows", "os_name": "nt"},
}
EXPECTED_TORCH = {name: "2.13.0+cpu" if name == "linux/x86_64" else "2.13.0" for name in PLATFORMS}


def _lines(path: str) -> list[str]:
    lines = [ln.strip() for ln in (ROOT / path).read_text().splitlines()]
    return [ln for ln in lines if ln and not ln.startswith("#")]


def _requirements(path: str) -> list[Requirement]:
    return [Requirement(ln) for ln in _lines(path) if not ln.startswith("-")]


def _resolve(environment: dict) -> dict[str, Requirement]:
    """The requirements of requirements.txt that apply on one platform, by name (each name once)."""
    chosen: dict[str, Requirement] = {}
    for req in _requirements("requirements.txt"):
        if req.marker is None or req.marker.evaluate(environment):
            assert req.name not in chosen, f"{req.name} is required twice on {environment}"
            chosen[req.name] = req
    return chosen


@pytest.mark.parametrize("platform", PLATFORMS)
def test_torch_resolves_to_one_exact_pin_per_platform(platform):
    torch = _resolve(PLATFORMS[platform])["torch"]
    assert str(torch.specifier) == f"=={EXPECTED_TORCH[platform]}", (platform, str(torch))


def test_same_public_torch_version_everywhere():
    versions = {Version(str(_resolve(env)["torch"].specifier).removeprefix("==")) for env in PLATFORMS.values()}
    assert {v.public for v in versions} == {"2.13.0"}
    assert {v.local for v in versions} == {"cpu", None}


def test_every_platform_gets_every_other_requirement_unchanged():
    """Only torch carries markers: everything else is the same list, pinned exactly, on every platform."""
    resolved = [_resolve(env) for env in PLATFORMS.values()]
    others = [{n: str(r) for n, r in pins.items() if n != "torch"} for pins in resolved]
    assert all(o == others[0] for o in others) and others[0]
    for req in _requirements("requirements.txt"):
        assert len(req.specifier) == 1 and next(iter(req.specifier)).operator == "==", f"{req} is not pinned exactly"


def test_cpu_index_is_an_extra_index_not_a_replacement_for_pypi():
    options = [ln for ln in _lines("requirements.txt") if ln.startswith("-")]
    assert f"--extra-index-url {CPU_INDEX}" in options
    assert not any(o.startswith(("--index-url", "-i ", "--no-index")) for o in options), options
    assert "-e ." in options


def test_dev_and_binder_and_pyproject_follow():
    dev = _lines("requirements-dev.txt")
    assert "-r requirements.txt" in dev
    assert not any(r.name == "torch" for r in _requirements("requirements-dev.txt")), "torch is pinned in one place"
    binder = {r.name: str(r.specifier) for r in _requirements("binder/requirements.txt")}
    assert binder["torch"] == f"=={EXPECTED_TORCH['linux/x86_64']}"  # Binder runs on Linux x86-64
    assert f"--extra-index-url {CPU_INDEX}" in _lines("binder/requirements.txt")
    # The package's own dependency must accept both builds (PEP 440: ==2.13.0 matches 2.13.0+cpu).
    import tomllib

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    torch_dep = next(Requirement(d) for d in deps if Requirement(d).name == "torch")
    assert all(torch_dep.specifier.contains(v) for v in set(EXPECTED_TORCH.values()))
    assert not torch_dep.specifier.contains("2.14.0"), "pyproject must pin torch exactly too"


def test_this_environment_has_the_torch_its_platform_resolves_to():
    import platform
    import sys

    import torch

    here = {"sys_platform": sys.platform, "platform_machine": platform.machine()}
    assert _resolve(here)["torch"].specifier.contains(torch.__version__), torch.__version__


def test_ci_install_does_not_retry_the_unreachable_cpu_index():
    """CI reaches PyPI only: with pip's default 5 retries, each package costs ~8 s against the CPU index."""
    ci = (ROOT / ".ci" / "run").read_text()
    install = next(ln for ln in ci.splitlines() if "pip install" in ln)
    assert "PIP_RETRIES=0" in ci[: ci.index(install)] + install


def test_ci_runs_the_readme_test_command_with_pyprojects_parallel_options():
    """CI runs exactly the README's test command; pyproject's addopts make it run in parallel workers
    (pytest-xdist, pinned exactly) with each notebook's cells kept in one worker, in order, under a cell timeout."""
    import re
    import shlex
    import tomllib

    command = "python -m pytest --nbval-lax"
    readme = (ROOT / "README.md").read_text()
    setup = next(ln for ln in readme.splitlines() if "requirements-dev.txt" in ln and "pytest" in ln)
    assert setup.rstrip().endswith(f"&& {command}"), setup
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.rstrip().endswith(f"&& {command}"), ci.splitlines()[-1]
    addopts = shlex.split(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["addopts"])
    assert addopts[addopts.index("-n") + 1].isdigit() and "--dist=loadgroup" in addopts, addopts
    assert "--no-loadscope-reorder" in addopts, "the root conftest orders the units, longest first"
    timeout = next(a for a in addopts if a.startswith("--nbval-cell-timeout="))
    assert 60 <= int(timeout.split("=")[1]) <= 600, "a hung cell must fail well inside CI's budget"
    xdist = next(r for r in _requirements("requirements-dev.txt") if r.name == "pytest-xdist")
    assert re.fullmatch(r"==\d+\.\d+\.\d+", str(xdist.specifier)), xdist
