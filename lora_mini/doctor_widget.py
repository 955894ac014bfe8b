"""The setup check in a notebook: the report as HTML, a test widget, and a status line saying whether it rendered.

The widget's view, once created, sets ``_view_count`` (ipywidgets' own view counter) in the kernel. Until
then the status line says it is waiting; after ``timeout_s`` seconds with the kernel idle and no view, it
says widgets do not render, with the fix. Where no widget manager exists at all, the test widget itself
falls back to an HTML message saying so. Nothing here ever raises: the check never fails a notebook.
"""
from __future__ import annotations

import html
import os
import threading
import time

from .doctor_checks import LABEL, WIDGET_MANAGER, report, run_checks


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
