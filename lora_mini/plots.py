"""One colour-blind-safe palette for every plot of the course (Okabe & Ito's eight colours).

The same method has the same colour in every notebook: ``ax.plot(x, y, color=COLORS["lora"])``.
Where more lines than colours meet in one plot, tell them apart by marker or line style too.
"""
from __future__ import annotations

OKABE_ITO = ("#000000", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7")

COLORS = {
    "lora": "#0072B2",      # blue: LoRA, everywhere
    "full": "#D55E00",      # vermillion: full fine-tuning
    "base": "#000000",      # black: the frozen base, references, baselines
    "random": "#999999",    # grey: random or chance baselines
    # the peers of notebook 09
    "bitfit": "#E69F00",
    "adapters": "#009E73",
    "prefix": "#CC79A7",
    "prompt": "#56B4E9",
    "ia3": "#F0E442",
    # the variants of notebook 10
    "rslora": "#56B4E9",
    "dora": "#009E73",
    "pissa": "#E69F00",
    "loraplus": "#CC79A7",
    "qlora": "#999999",
}

# The parts of a training step's memory (lora_mini.fit's estimates, the benchmark's accounting), in colours that no
# method uses (LoRA blue and full fine-tuning vermillion keep their meaning); the frozen weights black, as the base.
PART_COLORS = {"weights": "#000000", "gradients": "#CC79A7", "optimizer": "#E69F00", "activations": "#009E73",
               "temporaries": "#999999"}

# Sequential and diverging colour maps that read in grey and for colour-blind eyes.
CMAP = "viridis"          # magnitudes, accuracies
CMAP_SIGNED = "RdBu_r"    # signed weights (W, A, B, ΔW): centre the scale at 0


# ---------------------------------------------------------------------------------------------
# Readable figures: every axes says what it shows. The tests run every notebook with this check.
# ---------------------------------------------------------------------------------------------


class UnlabelledFigureError(AssertionError):
    """A figure the notebook drew has an axes without a label, a title or a colorbar it needs."""


def diagram(ax) -> None:
    """Mark ``ax`` as a drawing, not a chart (a schematic of shapes): no axes, so no labels to check."""
    ax.axis("off")
    ax._lora_mini_diagram = True


def _heatmaps(ax) -> list:
    from matplotlib.collections import QuadMesh

    return list(ax.images) + [c for c in ax.collections if isinstance(c, QuadMesh)]


def _label_in_group(ax, axis: str) -> bool:
    """True if ``ax`` or an axes sharing its x (or y) axis has a label for it, or the figure has a sup-label."""
    fig = ax.figure
    sup = getattr(fig, f"_sup{axis}label", None)
    if sup is not None and sup.get_text().strip():
        return True
    group = ax.get_shared_x_axes() if axis == "x" else ax.get_shared_y_axes()
    return any(getattr(other, f"get_{axis}label")().strip() for other in group.get_siblings(ax))


def unlabelled(fig) -> list[str]:
    """What a reader cannot tell from ``fig``, one line per problem (empty: the figure is readable).

    Every visible axes needs an x label, a y label and a title (or the figure a suptitle). An image or
    heatmap needs a colorbar, and with one it may go without the y label (its rows are often just
    indices); the colorbar itself needs a label. Axes marked with ``diagram(ax)`` are drawings, exempt.
    """
    problems = []
    suptitle = fig._suptitle is not None and fig._suptitle.get_text().strip()
    # a colorbar serves every image of the figure drawn on its scale (one colorbar for panels compared)
    scales = {(m.get_cmap().name, m.get_clim()) for ax in fig.axes for m in _heatmaps(ax)
              if getattr(m, "colorbar", None) is not None}
    for k, ax in enumerate(fig.axes):
        if not ax.get_visible() or getattr(ax, "_lora_mini_diagram", False):
            continue
        name = f"axes {k} ({ax.get_title() or 'untitled'!r})"
        colorbar = getattr(ax, "_colorbar", None)
        if colorbar is not None:  # a colorbar's own axes: its label says what the colours mean
            if not (ax.get_ylabel().strip() or ax.get_xlabel().strip()):
                problems.append(f"{name}: colorbar without a label (cbar.set_label('quantity (unit)'))")
            continue
        if not ax.axison:
            problems.append(f"{name}: axes turned off; label them, or mark a schematic with lora_mini.plots.diagram(ax)")
            continue
        maps = _heatmaps(ax)
        has_colorbar = bool(maps) and all((m.get_cmap().name, m.get_clim()) in scales for m in maps)
        if maps and not has_colorbar:
            problems.append(f"{name}: image or heatmap without a colorbar (fig.colorbar(im, ax=ax))")
        if not _label_in_group(ax, "x"):
            problems.append(f"{name}: no x label (ax.set_xlabel('quantity (unit)'))")
        if not _label_in_group(ax, "y") and not (maps and has_colorbar):
            problems.append(f"{name}: no y label (ax.set_ylabel('quantity (unit)'))")
        if not (ax.get_title().strip() or ax.get_title(loc="left").strip() or suptitle):
            problems.append(f"{name}: no title (ax.set_title(...) or fig.suptitle(...))")
    return problems


_PENDING: list[str] = []  # problems of figures rendered since the last check


def _record(fig) -> None:
    if getattr(fig, "_lora_mini_checked", False):
        return
    fig._lora_mini_checked = True
    _PENDING.extend(f"figure {fig.number if hasattr(fig, 'number') else ''}: {p}" for p in unlabelled(fig))


def check_figures_now() -> None:
    """Raise UnlabelledFigureError for every figure rendered since the last call, or still open and unreadable."""
    import sys

    problems = list(_PENDING)
    _PENDING.clear()
    if "matplotlib.pyplot" in sys.modules:
        from matplotlib._pylab_helpers import Gcf

        for manager in Gcf.get_all_fig_managers():
            fig = manager.canvas.figure
            if not getattr(fig, "_lora_mini_checked", False):
                fig._lora_mini_checked = True
                problems += [f"figure {manager.num}: {p}" for p in unlabelled(fig)]
    if problems:
        raise UnlabelledFigureError("a figure is hard to read:\n" + "\n".join(dict.fromkeys(problems)))


def install_figure_check(shell=None) -> None:
    """In an IPython kernel: every cell ends by checking the figures it drew (inside widget outputs too).

    Each figure is checked when it is rendered (matplotlib's print_figure, which inline display and
    savefig both go through); the cell that drew an unreadable one raises UnlabelledFigureError, so a
    notebook run (nbval, scripts/execute_notebooks.py) fails there. The tests install it in every kernel
    they start (the root conftest.py); learners never see it.
    """
    import ast

    from IPython import get_ipython
    from matplotlib.backend_bases import FigureCanvasBase

    shell = shell or get_ipython()
    if shell is None or getattr(shell, "_lora_mini_figure_check", False):
        return
    original = FigureCanvasBase.print_figure

    def print_figure(canvas, *args, **kwargs):
        _record(canvas.figure)
        return original(canvas, *args, **kwargs)

    FigureCanvasBase.print_figure = print_figure

    class AppendCheck(ast.NodeTransformer):
        # cell body ... ; last_expr  ->  cell body ... ; _v = last_expr ; check() ; _v  (the value is still shown)
        def visit_Module(self, node):
            check = ast.parse("__import__('lora_mini.plots', fromlist=['plots']).check_figures_now()").body[0]
            if node.body and isinstance(node.body[-1], ast.Expr):
                last = node.body.pop()
                node.body += [ast.Assign(targets=[ast.Name("_lora_mini_last", ast.Store())], value=last.value),
                              check, ast.Expr(ast.Name("_lora_mini_last", ast.Load()))]
            else:
                node.body.append(check)
            return ast.fix_missing_locations(node)

    shell.ast_transformers.append(AppendCheck())
    shell._lora_mini_figure_check = True


def figure_check_ipython_dir() -> str:
    """A fresh IPYTHONDIR whose startup file installs the figure check: point kernels at it to check them."""
    import tempfile
    from pathlib import Path

    root = Path(tempfile.mkdtemp(prefix="lora_mini_ipython_"))
    startup = root / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-lora-mini-figure-check.py").write_text(
        "try:\n    __import__('lora_mini.plots', fromlist=['plots']).install_figure_check()\n"
        "except ImportError:  # a kernel without lora_mini: nothing to check\n    pass\n")
    return str(root)
