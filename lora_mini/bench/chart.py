"""One figure for the README: step time, peak memory, inference, peers, notebooks; the ratios in the titles."""
from __future__ import annotations

from pathlib import Path

from ..plots import COLORS, OKABE_ITO, PART_COLORS
from .common import MiB
from .course import BUDGET_S

BAR_COLORS = {"floor": COLORS["random"], "base": COLORS["random"], "lora": COLORS["lora"], "merged": COLORS["lora"],
              "unmerged": OKABE_ITO[2], "full": COLORS["full"]}


def draw_chart(results: dict, path: Path) -> None:
    """:func:`chart_figure` of ``results``, saved as a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = chart_figure(results)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def chart_figure(results: dict):
    """The figure of a run (a dict from ``run``): one panel per section, the ratios in the titles."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplot_mosaic([["train", "memory", "infer"], ["peers", "nb", "nb"]], figsize=(14, 7.5))
    ratio = {c["name"]: c["measured"] for c in results["checks"]}
    train = (ratio["training step: LoRA / floor"], ratio["training step: LoRA / full fine-tuning"])
    infer = (ratio["inference: merged LoRA / base"], ratio["inference: unmerged LoRA / base (reported)"])
    _bars(ax["train"], results["training"], f"training step (ms)\nLoRA/floor {train[0]:.3f}, LoRA/full {train[1]:.3f}")
    _bars(ax["infer"], results["inference"], f"inference (ms)\nmerged/base {infer[0]:.3f}, unmerged {infer[1]:.3f}")
    _memory_panel(ax["memory"], results["memory"], results["config"]["memory_batch_size"])
    _peers_panel(ax["peers"], results["peers"].get("points", []))
    runs = results["notebooks"]["notebooks"]
    ax["nb"].barh([r["notebook"] for r in runs][::-1], [r["seconds"] for r in runs][::-1], color=COLORS["lora"])
    ax["nb"].set_xlabel("wall time (s)")
    ax["nb"].set_ylabel("notebook")
    ax["nb"].axvline(BUDGET_S, color="black", lw=0.8, ls="--")
    ax["nb"].set_title(f"notebooks, one thread (budget {BUDGET_S} s each): {sum(r['seconds'] for r in runs):.0f} s in "
                       f"all, largest peak {max((r['peak_rss_mb'] for r in runs), default=0):.0f} MB", fontsize=10)
    ax["nb"].tick_params(labelsize=8)
    m = results["machine"]
    title = f"lora_mini benchmark: {m['cpu']}, {m['cores']} cores, torch {m['torch']}, {m['torch_threads']} threads"
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def _bars(ax, section: dict, title: str) -> None:
    runs = {n: s["seconds"] * 1e3 for n, s in section.items() if isinstance(s, dict)}
    ax.bar(list(runs), list(runs.values()), color=[BAR_COLORS.get(n, COLORS["base"]) for n in runs])
    ax.set_title(title, fontsize=10)
    ax.set_ylabel("median time (ms)")
    ax.set_xlabel("run")


def _memory_panel(ax, memory: dict, batch_size: int) -> None:
    bottom = [0.0, 0.0]
    for kind in ["weights", "gradients", "optimizer", "activations", "temporaries"]:
        heights = [memory[n]["accounted"][kind] / MiB for n in ("lora", "full")]
        ax.bar(["LoRA", "full"], heights, bottom=bottom, label=kind, color=PART_COLORS[kind])
        bottom = [b + h for b, h in zip(bottom, heights)]
    rss = [memory[n]["measured_rss"] / MiB for n in ("lora", "full")]
    ax.scatter(["LoRA", "full"], rss, color="black", marker="_", s=900, label="measured RSS", zorder=3)
    title = f"peak training memory, batch {batch_size} (MiB)\nLoRA/full {rss[0] / rss[1]:.3f} (measured)"
    ax.set_title(title, fontsize=10)
    ax.set_ylim(0, 1.25 * max(rss))
    ax.set_ylabel("peak memory (MiB)")
    ax.set_xlabel("run")
    ax.legend(fontsize=7, loc="upper left")  # in the headroom above the bars


def _peers_panel(ax, points: list[dict]) -> None:
    labels = [f"{p['in']}x{p['out']}\nr={p['r']}\n{p['tokens']} tok" for p in points]
    for offset, (key, label) in enumerate((("lora_mini/peft", "/ PEFT"), ("lora_mini/loralib", "/ loralib"))):
        ax.bar([i + 0.4 * offset for i in range(len(points))], [p[key] for p in points], width=0.4, label=label,
               color=OKABE_ITO[5 + offset])
    ax.axhline(1.0, color="black", lw=0.8)
    ax.set_xticks([i + 0.2 for i in range(len(points))], labels, fontsize=7)
    ax.set_ylim(min([0.8] + [p[k] - 0.05 for p in points for k in ("lora_mini/peft", "lora_mini/loralib")]), None)
    ax.set_title("lora_mini forward + backward time / peer's\n(below 1: lora_mini is faster)", fontsize=10)
    ax.set_ylabel("time ratio (lora_mini / peer)")
    ax.set_xlabel("layer: in x out, rank, tokens")
    ax.legend(fontsize=7)
