"""Readable figures: lora_mini.plots.unlabelled, and the hook that makes every notebook cell check its figures.

conftest.py (at the root) points IPYTHONDIR at a profile whose startup file installs the check in every kernel the
tests start, so nbval's run of each notebook (--nbval-lax) fails in the cell that drew an axes without an x
label, a y label, a title, or a heatmap without a colorbar (figures inside widget outputs included). Here:
the rules on figures built directly, then the hook in a real kernel started the same way.
"""
from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from lora_mini.plots import diagram, figure_check_ipython_dir, unlabelled  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _labelled(ax, x="step", y="loss", title="training loss"):
    ax.set_xlabel(x), ax.set_ylabel(y), ax.set_title(title)


def test_a_bare_line_plot_lacks_labels_and_title():
    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    problems = "\n".join(unlabelled(fig))
    assert "no x label" in problems and "no y label" in problems and "no title" in problems
    _labelled(ax)
    assert unlabelled(fig) == []


def test_one_missing_label_is_enough():
    for missing in ("x", "y", "title"):
        fig, ax = plt.subplots()
        ax.plot([1, 2, 3])
        _labelled(ax, **{missing: ""})
        assert len(unlabelled(fig)) == 1, missing


def test_heatmaps_need_a_labelled_colorbar_and_then_no_y_label():
    fig, ax = plt.subplots()
    im = ax.imshow([[0.0, 1.0], [2.0, 3.0]])
    ax.set_xlabel("input index"), ax.set_title("ΔW")
    assert any("without a colorbar" in p for p in unlabelled(fig))
    cbar = fig.colorbar(im, ax=ax)
    assert any("colorbar without a label" in p for p in unlabelled(fig))
    cbar.set_label("entry value")
    assert unlabelled(fig) == []  # exempt from the y label, not from the x label
    ax.set_xlabel("")
    assert any("no x label" in p for p in unlabelled(fig))


def test_one_colorbar_serves_the_panels_drawn_on_its_scale():
    fig, axes = plt.subplots(1, 2)
    ims = [ax.imshow([[0.0, 1.0]], vmin=-1, vmax=1, cmap="RdBu_r") for ax in axes]
    for ax in axes:
        ax.set_xlabel("input index"), ax.set_title("W and ΔW")
    fig.colorbar(ims[1], ax=axes, label="entry (one scale)")
    assert unlabelled(fig) == []
    ims[0].set_clim(-2, 2)  # no longer on the colorbar's scale
    assert any("without a colorbar" in p for p in unlabelled(fig))


def test_shared_axes_and_suptitle_label_their_group():
    fig, axes = plt.subplots(1, 2, sharey=True)
    for ax in axes:
        ax.plot([0, 1]), ax.set_xlabel("step")
    axes[0].set_ylabel("exact match")
    fig.suptitle("two panels, one scale")
    assert unlabelled(fig) == []
    axes[0].set_ylabel("")
    assert sum("no y label" in p for p in unlabelled(fig)) == 2


def test_axes_turned_off_fail_unless_marked_as_a_diagram():
    fig, ax = plt.subplots()
    ax.imshow([[0.0, 1.0]])
    ax.axis("off")
    assert any("turned off" in p for p in unlabelled(fig))
    diagram(ax)
    assert unlabelled(fig) == []


CELLS = {
    "good": "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.plot([1, 2]); ax.set_xlabel('step')\n"
            "ax.set_ylabel('loss'); ax.set_title('loss'); plt.show()\n6 * 7",
    "shown": "fig, ax = plt.subplots(); ax.plot([1, 2]); plt.show()",
    "left_open": "fig, ax = plt.subplots(); ax.plot([1, 2]); ax.set_xlabel('step'); ax.set_title('loss')",
    "in_widget": "import ipywidgets as W\nout = W.Output()\nwith out:\n    plt.plot([3, 4]); plt.title('x'); plt.show()\nout",
    "after": "'still running'",
}


def test_the_kernel_hook_fails_the_cell_that_drew_an_unreadable_figure(tmp_path):
    from jupyter_client.manager import start_new_kernel

    ipython_dir = os.environ.get("IPYTHONDIR", "")
    assert Path(ipython_dir, "profile_default", "startup").is_dir(), "the root conftest.py sets IPYTHONDIR"
    km, kc = start_new_kernel(kernel_name="python3", env={**os.environ, "IPYTHONDIR": figure_check_ipython_dir()},
                              cwd=str(tmp_path))
    try:
        results = {}
        for name, code in CELLS.items():
            outputs = []
            reply = kc.execute_interactive(code, timeout=120, output_hook=outputs.append)
            content = reply["content"]
            results[name] = (content["status"], content.get("ename"), content.get("evalue", ""),
                             [m["content"] for m in outputs if m["msg_type"] == "execute_result"])
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    assert results["good"][0] == "ok" and results["good"][3][0]["data"]["text/plain"] == "42"  # value still shown
    for name in ("shown", "left_open", "in_widget"):
        status, ename, evalue, _ = results[name]
        assert (status, ename) == ("error", "UnlabelledFigureError"), (name, results[name])
    assert "no x label" in results["shown"][2] and "no y label" in results["left_open"][2]
    assert "no x label" in results["in_widget"][2]
    assert results["after"][0] == "ok"  # a failed check does not stick to later cells
