"""Synthetic sequence tasks: generated, seeded, and scored by exact match.

Every example is one token sequence::

    [task token] x_1 ... x_n [=] y_1 ... y_n

where x is a random string of digits 0-9 and y = task(x). The model reads the
task token and the input, and must write the answer after ``=``. Only the answer
positions are scored (the other targets are -100, which the loss ignores).

The base model is pretrained on ``BASE_TASKS``. The ``DOWNSTREAM_TASKS`` use task
tokens the base has never seen: they are what LoRA adapts it to.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch

from .errors import LoraValueError

N_DIGITS = 10  # token ids 0..9 are the digits
SEP = 10  # token id of "="
SEQ_LEN = 8  # digits per input

Batch = tuple[torch.Tensor, torch.Tensor]  # (idx (B, T), targets (B, T))


def _sort_desc(x: torch.Tensor) -> torch.Tensor:
    return x.sort(dim=1, descending=True).values


def _swap_pairs(x: torch.Tensor) -> torch.Tensor:
    B, n = x.shape
    return x.view(B, n // 2, 2).flip(2).reshape(B, n)


TASK_FNS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    # base tasks: what the shipped base model was pretrained on
    "copy": lambda x: x.clone(),
    "reverse": lambda x: x.flip(1),
    "sort": lambda x: x.sort(dim=1).values,
    # downstream tasks: never seen by the base
    "rotate": lambda x: x.roll(-1, dims=1),
    "swap_pairs": _swap_pairs,
    "increment": lambda x: (x + 1) % N_DIGITS,
    "sort_desc": _sort_desc,
}
BASE_TASKS: tuple[str, ...] = ("copy", "reverse", "sort")
DOWNSTREAM_TASKS: tuple[str, ...] = ("rotate", "swap_pairs", "increment", "sort_desc")
TASK_TOKEN: dict[str, int] = {name: SEP + 1 + i for i, name in enumerate(TASK_FNS)}
VOCAB_SIZE = SEP + 1 + len(TASK_FNS)
BLOCK_SIZE = 2 * SEQ_LEN + 1  # the last answer digit is never an input
EVAL_SEED = 12345


def check_task(task: str) -> None:
    """A LoraValueError naming the tasks there are, unless ``task`` is one of them."""
    if task not in TASK_FNS:
        raise LoraValueError(f"unknown task {task!r}; choose one of {sorted(TASK_FNS)}")


def encode(task: str, x: torch.Tensor) -> Batch:
    """Digits x (B, n) -> model input idx (B, 2n+1) and targets (B, 2n+1) for ``task``.

    targets[:, t] is the token that should follow idx[:, :t+1]; -100 where nothing is scored.
    """
    check_task(task)
    B, n = x.shape
    y = TASK_FNS[task](x)  # (B, n)
    tok = torch.full((B, 1), TASK_TOKEN[task], dtype=torch.long)
    sep = torch.full((B, 1), SEP, dtype=torch.long)
    full = torch.cat([tok, x, sep, y], dim=1)  # (B, 2n+2)
    idx = full[:, :-1]  # (B, 2n+1)
    targets = full[:, 1:].clone()  # (B, 2n+1)
    targets[:, : n + 1] = -100  # the input digits and "=" are not scored
    return idx, targets


def random_digits(batch_size: int, generator: torch.Generator, n: int = SEQ_LEN) -> torch.Tensor:
    """Uniform random digit strings (batch_size, n)."""
    return torch.randint(0, N_DIGITS, (batch_size, n), generator=generator)


def make_batch(tasks: str | Sequence[str], batch_size: int, generator: torch.Generator) -> Batch:
    """A fresh random batch, each example drawn from one of ``tasks`` at random."""
    tasks = [tasks] if isinstance(tasks, str) else list(tasks)
    which = torch.randint(0, len(tasks), (batch_size,), generator=generator)
    x = random_digits(batch_size, generator)
    idx = torch.empty((batch_size, BLOCK_SIZE), dtype=torch.long)
    targets = torch.empty_like(idx)
    for i, task in enumerate(tasks):
        rows = which == i
        idx[rows], targets[rows] = encode(task, x[rows])
    return idx, targets


def random_batch(config, batch_size: int, generator: torch.Generator) -> Batch:
    """Random tokens idx (B, T) and targets (B, T), T = config.block_size (a GPTConfig): data for a randomly
    initialised model of any size (the benchmark's), where the tasks' vocabulary and length do not fit."""
    shape = (batch_size, config.block_size)
    idx = torch.randint(0, config.vocab_size, shape, generator=generator)  # (B, T)
    return idx, torch.randint(0, config.vocab_size, shape, generator=generator)  # (B, T)


def make_dataset(task: str, n_examples: int, seed: int = 0) -> Batch:
    """A fixed training set of ``n_examples`` examples of ``task`` (for data-size experiments)."""
    g = torch.Generator().manual_seed(seed)
    return encode(task, random_digits(n_examples, g))


def eval_set(task: str, n_examples: int = 512) -> Batch:
    """The held-out evaluation set of ``task``: the same examples every time, drawn from EVAL_SEED."""
    check_task(task)
    g = torch.Generator().manual_seed(EVAL_SEED + TASK_TOKEN[task])
    return encode(task, random_digits(n_examples, g))


@torch.no_grad()
def exact_match(model: torch.nn.Module, task: str, n_examples: int = 512) -> float:
    """Fraction of held-out examples whose whole answer is right.

    Scored in one forward pass: if every answer digit is the argmax given the true
    prefix, greedy decoding writes exactly that answer, so this equals greedy exact match.
    """
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        idx, targets = (t.to(device) for t in eval_set(task, n_examples))
        logits, _ = model(idx)  # (B, T, vocab)
    finally:
        model.train(was_training)  # back to the caller's mode, even if the forward pass raised
    scored = targets != -100  # (B, T)
    guess = logits[..., :N_DIGITS].argmax(-1)  # (B, T): the best digit at each position
    right = (guess == targets) | ~scored  # (B, T)
    return right.all(dim=1).float().mean().item()


@torch.no_grad()
def complete(model: torch.nn.Module, task: str, digits: Sequence[int]) -> list[int]:
    """Greedy answer of ``model`` to one input: SEQ_LEN digits in, SEQ_LEN digits out."""
    check_task(task)
    digit = lambda d: isinstance(d, int) and not isinstance(d, bool) and 0 <= d < N_DIGITS  # noqa: E731
    if not isinstance(digits, (list, tuple)) or len(digits) != SEQ_LEN or not all(map(digit, digits)):
        raise LoraValueError(
            f"digits must be a list of {SEQ_LEN} integers in 0..9, e.g. [3, 1, 4, 1, 5, 9, 2, 6], got {digits!r}"
        )
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        seq = [TASK_TOKEN[task], *digits, SEP]
        for _ in range(SEQ_LEN):
            logits, _ = model(torch.tensor([seq], device=device))  # (1, T, vocab)
            seq.append(int(logits[0, -1, :N_DIGITS].argmax()))
    finally:
        model.train(was_training)
    return seq[-SEQ_LEN:]
