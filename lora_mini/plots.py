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

# Sequential and diverging colour maps that read in grey and for colour-blind eyes.
CMAP = "viridis"          # magnitudes, accuracies
CMAP_SIGNED = "RdBu_r"    # signed weights (W, A, B, ΔW): centre the scale at 0
