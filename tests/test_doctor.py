"""The setup check (lora_mini.doctor; its checks in doctor_checks, its notebook part in doctor_widget): what it
reports on this machine, each problem it can meet with its fix, and that it never raises. The widget test in a
real JupyterLab is in tests/test_browser_doctor.py."""
import importlib.metadata as metadata
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lora_mini import doctor, doctor_checks, doctor_widget

ROOT = Path(__file__).resolve().parent.parent
CPU_WHEEL = sys.platform == "linux" and platform.machine() == "x86_64"


def _by_name(checks) -> dict:
    return {c.name: c for c in checks}


def test_this_environment_checks_out_with_its_real_versions():
    checks = _by_name(doctor.run_checks())
    assert list(checks) == ["python", "torch", "notebook stack", "widget manager", "environment"]
    assert all(c.status == "ok" for c in checks.values()), doctor.report(list(checks.values()))
    assert platform.python_version() in checks["python"].detail and sys.executable in checks["python"].detail
    assert checks["torch"].detail.startswith(f"{torch.__version__}, CPU build, {torch.get_num_threads()} thread")
    for name in doctor.NOTEBOOK_STACK:
        assert f"{name} {metadata.version(name)}" in checks["notebook stack"].detail
    assert sys.prefix in checks["environment"].detail


def test_command_line_reports_and_exits_0_when_all_is_well():
    run = subprocess.run([sys.executable, "-m", "lora_mini.doctor"], capture_output=True, text=True, timeout=300,
                         cwd=ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "lora-mini setup check" and lines[-1] == "All good."
    assert "import torch takes" in run.stdout  # timed in a fresh Python: the "slow first import" figure


def test_without_the_course_installed_it_says_so_and_exits_1(tmp_path):
    """A Python that has neither torch nor lora-mini installed (no site-packages: -S), as a wrong kernel:
    the doctor still runs as a file, reports both problems with their fixes, and exits 1."""
    run = subprocess.run([sys.executable, "-S", str(ROOT / "lora_mini" / "doctor.py")], capture_output=True,
                         text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    checks = {line.split()[1]: line.split()[0] for line in run.stdout.splitlines()[1:-1] if not line.strip().startswith("fix:")}
    assert checks["torch"] == "PROBLEM" and checks["environment"] == "PROBLEM", run.stdout
    assert "import torch fails" in run.stdout
    assert "is not installed in its environment" in run.stdout or "not installed" in run.stdout
    assert run.stdout.count("fix:") >= 2
    assert run.stdout.splitlines()[-1].endswith("run the fix under each.")


def test_notebook_cell_explains_a_kernel_without_the_course(tmp_path):
    """Notebook 00's first cell, run by a Python without the course: no traceback, the problem and the fix."""
    run = subprocess.run([sys.executable, "-S", "-c", doctor.NOTEBOOK_CELL], capture_output=True, text=True,
                         timeout=60, cwd=tmp_path)
    assert run.returncode == 0 and not run.stderr, run.stderr
    assert run.stdout.startswith("PROBLEM: ModuleNotFoundError") and sys.executable in run.stdout
    assert "Fix: start JupyterLab from the course's venv" in run.stdout


def test_python_too_old(monkeypatch):
    monkeypatch.setattr(doctor_checks, "MIN_PYTHON", (sys.version_info[0], sys.version_info[1] + 1))
    check = doctor_checks.check_python()
    assert check.status == "problem" and "python3.11 -m venv" in check.fix


def test_torch_that_does_not_import_gets_the_reinstall_of_the_right_build(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    check = doctor_checks.check_torch()
    assert check.status == "problem" and "import torch fails: ModuleNotFoundError" in check.detail
    wanted = "torch==2.13.0+cpu --extra-index-url https://download.pytorch.org/whl/cpu" if CPU_WHEEL else "torch==2.13.0"
    assert check.fix.endswith(f"-m pip install --force-reinstall --no-deps {wanted}")
    assert check.fix.startswith(sys.executable)  # into this kernel's environment, not whatever `pip` is first


def test_torch_version_and_cuda_build(monkeypatch):
    monkeypatch.setattr(torch, "__version__", "2.12.0")
    check = doctor_checks.check_torch()
    assert check.status == "problem" and "the course pins 2.13.0" in check.detail
    monkeypatch.setattr(torch, "__version__", "2.13.0")
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    check = doctor_checks.check_torch()
    assert "CUDA 12.8 build" in check.detail
    assert check.status == ("note" if CPU_WHEEL else "ok")
    if CPU_WHEEL:
        assert "rm -rf .venv" in check.fix and check.fix.endswith("pip install -r requirements.txt")


def test_notebook_stack_problems(monkeypatch):
    real = doctor_checks._version
    monkeypatch.setattr(doctor_checks, "_version", lambda name: "3.6.8" if name == "jupyterlab" else real(name))
    check = doctor_checks.check_notebook_stack()
    assert check.status == "problem" and "jupyterlab 3.6.8" in check.detail
    assert "jupyterlab==4.6.6" in check.fix and "ipywidgets==8.1.9" in check.fix
    monkeypatch.setattr(doctor_checks, "_version", lambda name: None if name == "ipykernel" else real(name))
    check = doctor_checks.check_notebook_stack()
    assert check.status == "problem" and "ipykernel missing" in check.detail and check.fix.endswith("-r requirements.txt")
    monkeypatch.setattr(doctor_checks, "_version", lambda name: "8.1.5" if name == "ipywidgets" else real(name))
    check = doctor_checks.check_notebook_stack()
    assert check.status == "note" and "ipywidgets 8.1.5 (pinned 8.1.9)" in check.detail


def test_widget_manager_disabled_or_missing(monkeypatch, tmp_path):
    (tmp_path / "labconfig").mkdir()
    (tmp_path / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {doctor.WIDGET_MANAGER: True}}))
    monkeypatch.setenv("JUPYTER_CONFIG_PATH", str(tmp_path))
    check = doctor_checks.check_widget_manager()
    assert check.status == "problem" and "disabled" in check.detail
    assert check.fix == f"jupyter labextension enable {doctor.WIDGET_MANAGER}"
    monkeypatch.delenv("JUPYTER_CONFIG_PATH")
    monkeypatch.setattr("jupyter_core.paths.jupyter_path", lambda *parts: [str(tmp_path / "nothing")])
    check = doctor_checks.check_widget_manager()
    assert check.status == "problem" and "not installed" in check.detail
    assert check.fix.endswith("-m pip install jupyterlab_widgets==3.0.17")


def test_environment_without_the_course_installed(monkeypatch):
    monkeypatch.setattr(doctor_checks, "_course_distribution", lambda: None)
    check = doctor_checks.check_environment()
    assert check.status == "problem" and sys.prefix in check.detail
    if (ROOT / ".venv").is_dir():
        assert "ipykernel install --user --name lora-mini" in check.fix


def test_a_check_that_breaks_is_reported_not_raised(monkeypatch, capsys):
    def broken():
        raise RuntimeError("boom")

    monkeypatch.setattr(doctor_checks, "check_environment", broken)
    checks = _by_name(doctor.run_checks())
    assert checks["environment"].status == "note" and "boom" in checks["environment"].detail
    monkeypatch.setattr(doctor_widget, "run_checks", broken)
    doctor.check_setup()  # must not raise
    assert "could not finish: RuntimeError: boom" in capsys.readouterr().out


def test_check_setup_outside_a_kernel_prints_the_report(capsys):
    doctor.check_setup()
    out = capsys.readouterr().out
    assert out.startswith("lora-mini setup check") and "torch" in out


class _Recorder:
    def __init__(self):
        self.updates = []

    def __call__(self, obj, display_id):
        self.updates.append(obj.data)


def _wait_until(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def probe(monkeypatch):
    import ipywidgets as W

    recorder = _Recorder()
    monkeypatch.setattr("IPython.display.update_display", recorder)
    widget = W.HTML(value="probe")
    widget._view_count = 0
    yield widget, recorder
    doctor_widget._Busy.running = False


def test_widget_view_reported_turns_the_status_ok(probe):
    widget, recorder = probe
    doctor_widget._Busy.running = False
    doctor_widget._watch_widget(widget, "id", timeout_s=30)
    widget._view_count = 1  # what the frontend does when it creates the view
    assert _wait_until(lambda: recorder.updates)
    assert "lora-doctor-ok" in recorder.updates[0] and "rendered the test widget" in recorder.updates[0]
    time.sleep(0.5)
    assert len(recorder.updates) == 1


def test_no_view_while_idle_turns_the_status_into_the_problem_then_ok_if_it_comes_late(probe):
    widget, recorder = probe
    doctor_widget._Busy.running = False
    doctor_widget._watch_widget(widget, "id", timeout_s=0.5)
    assert _wait_until(lambda: recorder.updates)
    assert "lora-doctor-problem" in recorder.updates[0] and "no view of the test widget" in recorder.updates[0]
    assert "fix: <code>open the notebook in JupyterLab 4 started from the course" in recorder.updates[0]
    widget._view_count = 1  # the view came after all
    assert _wait_until(lambda: len(recorder.updates) == 2)
    assert "lora-doctor-ok" in recorder.updates[1]


def test_a_busy_kernel_is_not_taken_for_a_missing_view(probe):
    widget, recorder = probe
    doctor_widget._Busy.running = True  # a cell is running: the view cannot report back yet
    doctor_widget._watch_widget(widget, "id", timeout_s=0.5)
    time.sleep(1.5)
    assert recorder.updates == []
    doctor_widget._Busy.running = False  # the kernel goes idle: now the wait counts
    assert _wait_until(lambda: recorder.updates)
    assert "lora-doctor-problem" in recorder.updates[0]
