"""Predicted matmul FLOPs of a ToyGPT training step or forward, 2 per multiply-add: the bench's predictions."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..model import GPTConfig


@dataclass(frozen=True)
class Flops:
    """Matmul FLOPs of one step: forward, backward to inputs, backward to weights."""

    forward: int
    input_grad: int  # products that pass a gradient down to an activation
    weight_grad: int  # products that make a parameter's gradient

    @property
    def total(self) -> int:
        return self.forward + self.input_grad + self.weight_grad


def matmul_flops(
    config: GPTConfig, batch_size: int, seq_len: int, mode: str, targets: Sequence[str] = (), r: int = 0
) -> Flops:
    """Matmul FLOPs of ToyGPT(config) on (batch_size, seq_len) tokens in ``mode``:

    "full" (every weight trains), "floor" (frozen; the gradient starts at the embedding output)
    or "lora" (rank-r adapters on ``targets``, the rest frozen). A Linear on N tokens costs
    2·N·in·out forward, as much again for its input gradient when its input needs one, and as
    much again for its weight gradient when it trains. Attention costs 4·B·T²·C forward (Q Kᵀ and
    P V, dense: the causal mask is ignored) and twice that backward (both operands of each product).
    A LoRA layer adds A (in -> r) and B (r -> out) by the same rules; both train.
    For inference, read ``.forward``.
    """
    B, T, C = batch_size, seq_len, config.n_embd
    N = B * T
    fwd = in_grad = w_grad = 0
    grad_below = mode in ("full", "floor")  # does the residual stream need a gradient here?

    def linear(name: str, d_in: int, d_out: int, x_needs_grad: bool) -> bool:
        """Count one Linear; return whether its output needs a gradient."""
        nonlocal fwd, in_grad, w_grad
        lora = mode == "lora" and name in targets
        fa, fb, f = 2 * N * d_in * r, 2 * N * r * d_out, 2 * N * d_in * d_out  # A, B, W
        fwd += f + (fa + fb if lora else 0)
        in_grad += (f if x_needs_grad else 0) + (fb + (fa if x_needs_grad else 0) if lora else 0)
        w_grad += (f if mode == "full" else 0) + (fa + fb if lora else 0)
        return x_needs_grad or lora or mode == "full"

    for _ in range(config.n_layer):
        att_needs_grad = any([linear(n, C, C, grad_below) for n in ("q_proj", "k_proj", "v_proj")])
        fwd += 4 * B * T * T * C
        in_grad += 8 * B * T * T * C if att_needs_grad else 0
        grad_below = linear("o_proj", C, C, att_needs_grad) or grad_below
        grad_below = linear("fc2", 4 * C, C, linear("fc1", C, 4 * C, grad_below)) or grad_below
    linear("lm_head", C, config.vocab_size, grad_below)
    return Flops(fwd, in_grad, w_grad)
