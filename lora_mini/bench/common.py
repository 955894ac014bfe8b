"""What every section shares: the configuration, one row of the summary (Check), and the LoRA copy it times."""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from functools import partial

from ..lora import inject_lora
from ..model import GPTConfig, ToyGPT

MEDIUM_TOY = GPTConfig(block_size=64, n_layer=4, n_head=8, n_embd=512)  # 12.6 M parameters, random init
QUICK_TOY = GPTConfig(block_size=32, n_layer=2, n_head=4, n_embd=128)
MiB = 2**20


@dataclass
class BenchConfig:
    """What to measure, and how often."""

    model: GPTConfig = field(default_factory=partial(copy.copy, MEDIUM_TOY))
    batch_size: int = 32  # training step and its FLOPs
    targets: tuple[str, ...] = ("q_proj", "v_proj")
    r: int = 8
    alpha: float = 16
    memory_batch_size: int = 8
    inference_batch_size: int = 1  # one request of block_size tokens
    peer_points: tuple[tuple[int, int, int, int], ...] = (  # (in, out, r, tokens)
        (96, 96, 4, 1088),  # the course's base: q_proj at batch 64
        (512, 512, 8, 2048),  # the medium toy: q_proj at batch 32
        (512, 2048, 8, 2048),  # the medium toy: fc1
        (2048, 2048, 16, 512),
    )
    notebook_dir: str = "notebooks"  # the course's notebooks folder (relative: to the current directory)
    notebooks: tuple[str, ...] | None = None  # None: every notebook; () none
    warmup: int = 2
    repeats: int = 7
    min_sample_s: float = 0.2  # shorter calls are repeated in a loop that lasts at least this long


QUICK = BenchConfig(  # small sizes and one short notebook: proves the command works, in under a minute
    model=QUICK_TOY,
    batch_size=8,
    peer_points=((128, 128, 4, 256),),
    notebooks=("12_review.ipynb",),
    warmup=1,
    repeats=3,
    min_sample_s=0.02,
)


@dataclass
class Check:
    """One row of the summary: a measured figure against its target, and the FLOP prediction if there is one."""

    name: str
    measured: float
    target: float | None  # the figure must be <= target; None: reported, no target
    predicted: float | None = None
    at_least: float | None = None  # and >= at_least, for "agree within" targets
    unit: str = "x"

    @property
    def passed(self) -> bool | None:
        if self.target is None:
            return None
        return self.measured <= self.target and (self.at_least is None or self.measured >= self.at_least)

    def as_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}


def lora_copy(base: ToyGPT, cfg: BenchConfig) -> ToyGPT:
    """A copy of ``base`` with LoRA on ``cfg.targets``."""
    model = copy.deepcopy(base)
    inject_lora(model, list(cfg.targets), r=cfg.r, alpha=cfg.alpha)
    return model
