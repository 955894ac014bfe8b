"""LoRA's peers, one layer class each: BitFit, adapters, prefix tuning, prompt tuning, (IA)³.

Each wraps a frozen ``base`` module (:class:`PeerLayer`) and adds a few trainable numbers; each is a
few lines. ``lora_mini.peers`` puts them into a model (``inject_peer``), switches them off and merges them.
Parameter names follow PEFT where PEFT has the method (``ia3_l``, prompt ``embedding``).

Shapes: B = batch, T = tokens, C = n_embd, H = heads, D = C // H, P = virtual tokens, m = bottleneck.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .errors import LoraStateError
from .model import CausalSelfAttention

MERGEABLE = ("bitfit", "ia3")


class PeerLayer(nn.Module):
    """What every peer layer shares: a frozen ``base`` module and the flags ``disabled`` and ``merged``."""

    def __init__(self, base: nn.Module) -> None:
        super().__init__()
        self.base = base
        self.base.requires_grad_(False)
        self.disabled = False  # set by disable_peers(): compute the base only
        self.merged = False  # set by merge(): the change lives inside the base's own tensors

    def merge(self) -> None:
        raise LoraStateError(merge_problem(self))

    def unmerge(self) -> None:
        pass  # never merged


# ---------------------------------------------------------------------------
# The five methods, one layer class each
# ---------------------------------------------------------------------------


class BitFitBias(PeerLayer):
    """BitFit: a frozen Linear or LayerNorm whose bias trains, as b + Δb with Δb starting at zero.

    Training Δb with AdamW (no weight decay) follows exactly the path of training b itself;
    keeping b frozen is what lets BitFit be switched off and merged like the others.
    """

    def __init__(self, base: nn.Linear | nn.LayerNorm) -> None:
        super().__init__(base)
        self.bias_delta = nn.Parameter(torch.zeros_like(base.bias))  # (out,) Δb = 0: the base

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., in) -> (..., out): base(x) + Δb."""
        y = self.base(x)  # (..., out)
        if self.merged or self.disabled:
            return y
        return y + self.bias_delta

    @torch.no_grad()
    def merge(self) -> None:
        if not self.merged:
            self.base.bias += self.bias_delta
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        if self.merged:
            self.base.bias -= self.bias_delta
            self.merged = False


class Adapter(PeerLayer):
    """Houlsby adapter after a frozen Linear: h = base(x), then h + up(gelu(down(h))).

    down: C -> m, up: m -> C, both with biases (2·m·C + m + C numbers). ``adapter_up`` starts
    at zero, so the adapter starts as the identity and the model as its base. The gelu between
    down and up is what makes it impossible to fold into the base weight: it always costs two
    more matmuls, run one after the other, at inference.
    """

    def __init__(self, base: nn.Linear, bottleneck: int) -> None:
        super().__init__(base)
        C = base.out_features
        self.adapter_down = nn.Linear(C, bottleneck)  # (m, C), PyTorch's default init
        self.adapter_up = nn.Linear(bottleneck, C)  # (C, m)
        nn.init.zeros_(self.adapter_up.weight)
        nn.init.zeros_(self.adapter_up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., in) -> (..., C)."""
        h = self.base(x)  # (..., C)
        if self.disabled:
            return h
        return h + self.adapter_up(F.gelu(self.adapter_down(h)))  # (..., m) in the middle


class PrefixAttention(PeerLayer):
    """Prefix tuning: a frozen attention whose keys and values start with P learned vectors each.

    Every query sees the P prefix positions and the input tokens up to itself. The prefix is
    P·C keys + P·C values per layer, and the attention of every token now spans P + T positions.
    """

    def __init__(self, base: CausalSelfAttention, num_virtual_tokens: int, init: torch.Tensor) -> None:
        super().__init__(base)
        with torch.no_grad():  # start as the keys and values this layer computes for real tokens (init (P, C))
            self.prefix_key = nn.Parameter(base.k_proj(init).clone())  # (P, C)
            self.prefix_value = nn.Parameter(base.v_proj(init).clone())  # (P, C)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, C) -> (B, T, C)."""
        if self.disabled:
            return self.base(x)
        a = self.base
        B, T, C = x.shape
        P, H = self.prefix_key.shape[0], a.n_head
        D = C // H
        k = torch.cat([self.prefix_key.expand(B, P, C), a.k_proj(x)], dim=1)  # (B, P + T, C)
        v = torch.cat([self.prefix_value.expand(B, P, C), a.v_proj(x)], dim=1)  # (B, P + T, C)
        q = a.q_proj(x).view(B, T, H, D).transpose(1, 2)  # (B, H, T, D)
        k = k.view(B, P + T, H, D).transpose(1, 2)  # (B, H, P + T, D)
        v = v.view(B, P + T, H, D).transpose(1, 2)  # (B, H, P + T, D)
        sees = torch.ones(T, P + T, dtype=torch.bool, device=x.device).tril(diagonal=P)  # (T, P + T)
        p = a.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=sees, dropout_p=p)  # (B, H, T, D)
        return a.o_proj(y.transpose(1, 2).reshape(B, T, C))  # (B, T, C)


class SoftPrompt(PeerLayer):
    """Prompt tuning: P learned input vectors put before the embedded tokens (ToyGPT.soft_prompt).

    They go in after the position embeddings, so the input tokens keep positions 0..T-1 and
    the base's block_size is not used up; every layer then processes P + T positions.
    """

    def __init__(self, init: torch.Tensor) -> None:
        super().__init__(nn.Identity())
        self.embedding = nn.Parameter(init.clone())  # (P, C): PEFT's prompt embedding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, C) -> (B, P + T, C), or x itself when disabled."""
        if self.disabled:
            return x
        B, _, C = x.shape
        return torch.cat([self.embedding.expand(B, -1, C), x], dim=1)  # (B, P + T, C)


class IA3Linear(PeerLayer):
    """(IA)³: a frozen Linear whose output (k, v) or input (the MLP's hidden, fc2) is scaled by l.

    ``ia3_l`` starts at ones: the base. Scaling is linear, so merging folds l into W
    (and into b when the output is scaled): zero added latency.
    """

    def __init__(self, base: nn.Linear, is_feedforward: bool) -> None:
        super().__init__(base)
        self.is_feedforward = is_feedforward  # True: scale the input (fc2 reads the MLP's hidden)
        n = base.in_features if is_feedforward else base.out_features
        self.ia3_l = nn.Parameter(torch.ones(n))  # (in,) or (out,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., in) -> (..., out)."""
        if self.merged or self.disabled:
            return self.base(x)
        if self.is_feedforward:
            return self.base(x * self.ia3_l)  # l ⊙ gelu(fc1 x), then fc2
        return self.base(x) * self.ia3_l  # l ⊙ (W x + b)

    @torch.no_grad()
    def merge(self) -> None:
        if self.merged:
            return
        if merge_problem(self):
            raise LoraStateError(merge_problem(self))
        if self.is_feedforward:
            self.base.weight *= self.ia3_l  # (out, in) * (in,): column j scaled by l_j
        else:
            self.base.weight *= self.ia3_l[:, None]  # (out, in): row i scaled by l_i
            self.base.bias *= self.ia3_l
        self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        if not self.merged:
            return
        if self.is_feedforward:
            self.base.weight /= self.ia3_l
        else:
            self.base.weight /= self.ia3_l[:, None]
            self.base.bias /= self.ia3_l
        self.merged = False


def merge_problem(layer: PeerLayer) -> str | None:
    """Why ``layer`` cannot be merged, or None if it can."""
    if not isinstance(layer, (BitFitBias, IA3Linear)):
        return (f"{type(layer).__name__} cannot be merged: its change is not a fixed edit of the base's weights; "
                f"serve it unmerged (only {' and '.join(MERGEABLE)} merge)")
    if isinstance(layer, IA3Linear) and not bool((layer.ia3_l != 0).all()):
        return "an (IA)³ vector has a zero entry, so merging could not be undone; serve it unmerged"
    return None
