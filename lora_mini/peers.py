"""LoRA's peers, each from scratch on the toy: BitFit, adapters, prefix tuning, prompt tuning, (IA)³.

Every method freezes the base and trains a few new numbers; they differ in WHERE those numbers act:

    BitFit         b + Δb in every Linear and LayerNorm          Δb zero: starts as the base; mergeable
    adapters       h + up(gelu(down(h))) after attention and MLP  up zero: starts as the base; NOT mergeable
    prefix tuning  P learned keys and values in every attention   attends to them at once; NOT mergeable
    prompt tuning  P learned input vectors before the tokens      attends to them at once; NOT mergeable
    (IA)³          l ⊙ k, l ⊙ v, l ⊙ (MLP hidden)                 l = 1: starts as the base; mergeable

Read the layer classes first (``lora_mini.peer_modules``: :class:`BitFitBias`, :class:`Adapter`,
:class:`PrefixAttention`, :class:`SoftPrompt`, :class:`IA3Linear`); each is a few lines. Then :func:`inject_peer` puts one
method into a model and freezes everything else, as ``inject_lora`` does for LoRA.
Like LoRA layers, every peer layer can be switched off (:func:`disable_peers`: the base, bit for
bit) and, where the method allows, merged (:func:`merge_peers`) and unloaded (:func:`unload_merged`:
the plain base modules again, so the model runs exactly as fast as the base).
Parameter names follow PEFT where PEFT has the method (``ia3_l``, prompt ``embedding``).

Shapes: B = batch, T = tokens, C = n_embd, H = heads, D = C // H, P = virtual tokens, m = bottleneck.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn as nn

from .errors import LoraStateError, LoraTypeError, LoraValueError
from .lora import LoRALinear, replace_module
from .model import MLP, CausalSelfAttention, ToyGPT
from .peer_modules import (
    MERGEABLE,
    Adapter,
    BitFitBias,
    IA3Linear,
    PeerLayer,
    PrefixAttention,
    SoftPrompt,
    merge_problem,
)

__all__ = ["METHODS", "MERGEABLE", "SIZE_NAMES", "Adapter", "BitFitBias", "IA3Linear", "PeerLayer", "PrefixAttention",
           "SoftPrompt", "disable_peers", "inject_peer", "merge_peers", "peer_layers", "unload_merged", "unmerge_peers",
           "virtual_tokens"]

METHODS = ("bitfit", "adapters", "prefix", "prompt", "ia3")
SIZE_NAMES = {"bitfit": None, "adapters": "bottleneck", "prefix": "num_virtual_tokens",
              "prompt": "num_virtual_tokens", "ia3": None}  # the one size knob of each method


# ---------------------------------------------------------------------------
# Model surgery: put one method in, freeze the rest
# ---------------------------------------------------------------------------


def peer_layers(model: nn.Module) -> dict[str, PeerLayer]:
    """The peer layers of ``model`` by name, found with isinstance."""
    return {name: m for name, m in model.named_modules() if isinstance(m, PeerLayer)}


def _check(model: object, method: object, size: object) -> None:
    """Every check before anything changes: a bad call leaves the model as it was."""
    if not isinstance(model, ToyGPT):
        raise LoraTypeError(f"model must be a ToyGPT (e.g. load_base()), got {type(model).__name__}")
    if method not in METHODS:
        raise LoraValueError(f"method must be one of {METHODS}, got {method!r}")
    knob = SIZE_NAMES[method]
    if knob is None and size is not None:
        raise LoraValueError(f"{method} has no size to choose (its parameter count is fixed), got size={size!r}; "
                             f"pass size=None")
    if knob is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise LoraValueError(f"{method} needs size={knob}, a positive integer (e.g. size=8), got size={size!r}")
    if peer_layers(model) or model.soft_prompt is not None:
        raise LoraStateError(f"model already has {sorted({type(m).__name__ for m in peer_layers(model).values()})}; "
                             f"inject one method into a fresh base (load_base())")
    if any(isinstance(m, LoRALinear) for m in model.modules()):
        raise LoraStateError("model already has LoRA layers; compare methods on fresh bases (load_base())")


def _real_tokens(model: ToyGPT, n: int, seed: int) -> torch.Tensor:
    """(n, C): the embeddings of n tokens drawn from the vocabulary, with their positions (0, 1, ...)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, model.config.vocab_size, (n,), generator=g)
    pos = torch.arange(n) % model.config.block_size
    return (model.tok_emb.weight[ids] + model.pos_emb.weight[pos]).detach()  # (n, C)


def inject_peer(model: ToyGPT, method: str, size: int | None = None, seed: int = 0) -> int:
    """Put ``method`` into ``model`` in place, freeze everything else; returns the trainable count.

    ``size``: the adapter bottleneck m, or the number of virtual tokens P for prefix and prompt
    tuning; None for BitFit and (IA)³, whose size is fixed by the model. ``seed`` draws the real
    tokens whose embeddings (prompt) or keys and values (prefix) the virtual tokens start from.
    """
    _check(model, method, size)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise LoraTypeError(f"seed must be an integer (e.g. seed=0), got {seed!r}")
    device = model.tok_emb.weight.device
    attentions = [m for m in model.modules() if isinstance(m, CausalSelfAttention)]
    mlps = [m for m in model.modules() if isinstance(m, MLP)]
    if method == "bitfit":
        for parent in list(model.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, (nn.Linear, nn.LayerNorm)) and child.bias is not None:
                    setattr(parent, name, BitFitBias(child))
    elif method == "adapters":  # after attention's output projection and after the MLP, as Houlsby et al.
        for a in attentions:
            a.o_proj = Adapter(a.o_proj, size).to(device)
        for m in mlps:
            m.fc2 = Adapter(m.fc2, size).to(device)
    elif method == "prefix":
        init = _real_tokens(model, size, seed).to(device)  # (P, C)
        for block in model.blocks:
            block.attn = PrefixAttention(block.attn, size, block.ln1(init))
    elif method == "prompt":
        model.soft_prompt = SoftPrompt(_real_tokens(model, size, seed).to(device))
    elif method == "ia3":  # PEFT's IA3 default for OPT: k_proj, v_proj, and fc2 as feed-forward
        for a in attentions:
            a.k_proj = IA3Linear(a.k_proj, is_feedforward=False).to(device)
            a.v_proj = IA3Linear(a.v_proj, is_feedforward=False).to(device)
        for m in mlps:
            m.fc2 = IA3Linear(m.fc2, is_feedforward=True).to(device)
    model.requires_grad_(False)
    for layer in peer_layers(model).values():
        frozen = {id(p) for p in layer.base.parameters()}
        for p in layer.parameters():
            p.requires_grad_(id(p) not in frozen)  # only the method's new numbers train
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def merge_peers(model: nn.Module) -> None:
    """Fold every peer layer into the base (BitFit, (IA)³): zero added latency. Others: a LoraStateError."""
    layers = peer_layers(model).values()
    if not layers:
        raise LoraStateError("model has no peer layers; call inject_peer(model, method, size) first")
    for layer in layers:  # all checked before any layer merges
        problem = merge_problem(layer)
        if problem:
            raise LoraStateError(problem)
    for layer in layers:
        layer.merge()


def unload_merged(model: nn.Module) -> int:
    """Swap every merged layer (a peer or a LoRA layer) for its plain base module; returns how many.

    After merging, the wrappers only call their base: unloading leaves exactly the base's modules,
    as PEFT's ``merge_and_unload`` does. Nothing to undo then: unload a copy to deploy it.
    """
    merged = [(name, m) for name, m in model.named_modules()
              if isinstance(m, (PeerLayer, LoRALinear)) and m.merged]
    for name, layer in merged:
        replace_module(model, name, layer.base)
    return len(merged)


def unmerge_peers(model: nn.Module) -> None:
    """Undo :func:`merge_peers` (up to float rounding)."""
    for layer in peer_layers(model).values():
        layer.unmerge()


@contextmanager
def disable_peers(model: nn.Module) -> Iterator[nn.Module]:
    """Inside ``with disable_peers(model):`` the model computes its base, bit for bit."""
    layers = peer_layers(model).values()
    if any(layer.merged for layer in layers):
        raise LoraStateError("cannot disable merged layers; call unmerge_peers(model) first")
    for layer in layers:
        layer.disabled = True
    try:
        yield model
    finally:
        for layer in layers:
            layer.disabled = False


def virtual_tokens(model: nn.Module) -> int:
    """How many positions a method adds to every attention: P for prefix and prompt tuning, else 0."""
    for layer in peer_layers(model).values():
        if isinstance(layer, PrefixAttention):
            return layer.prefix_key.shape[0]
        if isinstance(layer, SoftPrompt):
            return layer.embedding.shape[0]
    return 0
