"""Serve many adapters from one base in a single forward pass (the S-LoRA / Punica idea).

Every adapted layer computes ``base(x) + scaling · B (A x)``. The expensive ``base(x)``
is the same for every request; only the small ``B A x`` differs per task. So a batch
whose rows need *different* adapters can still run as one batch: share ``base(x)``,
and give row ``i`` its own ``A_i``, ``B_i``::

    with mixed_adapters(model, ["rotate.safetensors", "increment.safetensors"], which=torch.tensor([0, 1, 1])):
        logits, _ = model(idx)          # row 0 uses rotate, rows 1 and 2 use increment

Inside the ``with`` block each :class:`~lora_mini.lora.LoRALinear` of ``model`` is
temporarily replaced by a :class:`MixedLoRALinear` that gathers each row's adapter;
on exit (normally or by an exception) the original layers, with their own A and B,
are put back exactly. This is for inference: the stacked adapters are not trained.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator, Sequence

import torch
import torch.nn as nn

from . import checks
from .adapters import file_config, load_adapter, lora_state_dict
from .errors import LoraStateError, LoraTypeError, LoraValueError
from .lora import LoRALinear, lora_layers, replace_module


class MixedLoRALinear(nn.Module):
    """A frozen Linear shared by the whole batch plus one LoRA adapter per row, chosen by ``which``.

    ``A`` is (n, r, in) and ``B`` is (n, out, r): adapter k of the stack is ``A[k]``, ``B[k]``.
    Row ``i`` of the batch computes ``base(x_i) + scaling · B[which[i]] A[which[i]] x_i``.
    """

    mixed_adapters_layer = True  # what checks.not_serving looks for: most calls refuse to run inside the block

    def __init__(self, layer: LoRALinear, A: torch.Tensor, B: torch.Tensor, which: torch.Tensor) -> None:
        super().__init__()
        self.base = layer.base  # the frozen nn.Linear, shared (same object as in the LoRALinear)
        self.scaling = layer.scaling
        # Plain attributes, not parameters or buffers: they stay out of state_dict and optimizers.
        self.A = A  # (n, r, in)
        self.B = B  # (n, out, r)
        self.which = which  # (batch,) adapter index of every row

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, ..., in) -> (batch, ..., out); row i uses adapter which[i]."""
        if x.shape[0] != self.which.shape[0]:
            raise LoraValueError(
                f"the batch has {x.shape[0]} rows but `which` names an adapter for {self.which.shape[0]}; "
                "pass one adapter index per row"
            )
        y = self.base(x)  # (batch, ..., out): the shared, expensive part
        xs = x.reshape(x.shape[0], -1, x.shape[-1])  # (batch, T, in), T = all middle dims together
        A = self.A[self.which]  # (batch, r, in): each row's own A
        B = self.B[self.which]  # (batch, out, r): each row's own B
        a = torch.einsum("bti,bri->btr", xs, A)  # (batch, T, r)
        delta = torch.einsum("btr,bor->bto", a, B)  # (batch, T, out)
        return y + self.scaling * delta.reshape(y.shape)  # (batch, ..., out)

    def extra_repr(self) -> str:
        n, r, _ = self.A.shape
        return f"adapters={n}, r={r}, scaling={self.scaling:g}"


def _check_which(which: object, n_adapters: int) -> torch.Tensor:
    """``which`` as a 1-D integer tensor with every value in [0, n_adapters), or a clear ValueError."""
    if not isinstance(which, torch.Tensor):
        try:
            which = torch.as_tensor(which)
        except (TypeError, ValueError, RuntimeError) as e:
            raise LoraTypeError(f"`which` must be a 1-D LongTensor of adapter indices, got {which!r}") from e
    if which.dtype.is_floating_point or which.dtype.is_complex or which.dtype == torch.bool:
        raise LoraTypeError(f"`which` must hold integer adapter indices (a LongTensor), got dtype {which.dtype}")
    if which.dim() != 1 or which.numel() == 0:
        raise LoraValueError(f"`which` must be 1-D with one adapter index per batch row, got shape {tuple(which.shape)}")
    lo, hi = int(which.min()), int(which.max())
    if lo < 0 or hi >= n_adapters:
        raise LoraValueError(
            f"`which` holds indices {lo}..{hi} but there are {n_adapters} adapters (valid: 0..{n_adapters - 1})"
        )
    return which.long()


def _stack_adapters(
    model: nn.Module, adapters: Sequence[str | os.PathLike]
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{layer name: (A (n, r, in), B (n, out, r))} from the adapter files, validated by load_adapter.

    Each file is loaded into ``model`` in turn (so every check of :func:`load_adapter` applies),
    copied out, and the model's own adapter is copied back at the end, even on error.
    """
    own = {k: v.clone() for k, v in lora_state_dict(model).items()}  # the model's adapter, to restore
    loaded: list[dict[str, torch.Tensor]] = []
    try:
        for path in adapters:
            load_adapter(model, path)  # raises a ValueError naming what does not fit, changing nothing
            loaded.append({k: v.clone() for k, v in lora_state_dict(model).items()})
    finally:
        with torch.no_grad():
            for k, v in lora_state_dict(model).items():
                v.copy_(own[k])
    return {
        name: (
            torch.stack([sd[f"{name}.lora_A"] for sd in loaded]),  # (n, r, in)
            torch.stack([sd[f"{name}.lora_B"] for sd in loaded]),  # (n, out, r)
        )
        for name in lora_layers(model)
    }


@contextmanager
def mixed_adapters(
    model: nn.Module, adapters: Sequence[str | os.PathLike], which: torch.Tensor
) -> Iterator[nn.Module]:
    """Inside ``with mixed_adapters(model, adapters, which):`` row i of a batch uses ``adapters[which[i]]``.

    ``model`` must carry unmerged LoRA layers (``inject_lora``) of the same rank, alpha and targets as
    every adapter file (``save_adapter``). ``which`` is a LongTensor (batch,) of indices into ``adapters``;
    every forward pass inside the block must have exactly that many rows.

    Bad input (no or unreadable files, files that do not fit the model, a merged or disabled model,
    ``which`` of the wrong type or out of range) raises ValueError before anything changes.
    On exit the model's own LoRA layers, with their own A and B, are back exactly as they were.
    """
    checks.model(model, "mixed_adapters")
    if isinstance(adapters, (str, os.PathLike)) or not isinstance(adapters, Sequence):
        raise LoraTypeError(f"`adapters` must be a non-empty list of adapter file paths, got {adapters!r}")
    if len(adapters) == 0:
        raise LoraValueError("`adapters` must be a non-empty list of adapter file paths, got []")
    checks.not_serving(model, "mixed_adapters")
    file_config(model)  # raises if the model has no LoRA layers, several configs, DoRA or PiSSA
    layers = lora_layers(model)
    if any(layer.merged for layer in layers.values()):
        raise LoraStateError(
            "mixed_adapters needs unmerged layers (each row adds its own B·A); call unmerge_lora(model) first"
        )
    if any(layer.disabled for layer in layers.values()):
        raise LoraStateError("mixed_adapters cannot run inside disable_lora(model); leave that block first")
    which = _check_which(which, len(adapters))
    stacks = _stack_adapters(model, adapters)  # validates every file; model unchanged afterwards

    swapped: list[tuple[str, LoRALinear]] = []
    try:
        for name, layer in layers.items():
            A, B = (t.to(layer.lora_A.device) for t in stacks[name])  # (n, r, in), (n, out, r)
            replace_module(model, name, MixedLoRALinear(layer, A, B, which.to(layer.lora_A.device)))
            swapped.append((name, layer))
        yield model
    finally:
        for name, layer in swapped:
            replace_module(model, name, layer)  # the very same LoRALinear object, untouched
