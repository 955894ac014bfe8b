"""A toy QLoRA base: store the frozen Linear weights in 4-bit NormalFloat (NF4) or int8.

QLoRA keeps the frozen base in 4 bits and trains LoRA in full precision on top. Each
weight matrix is cut into blocks of 64 numbers; a block stores its largest magnitude
(absmax, one float32) and, per number, the index of the nearest code in a small table:

    w ≈ absmax_block · code[index]

NF4's 16 codes are quantiles of a normal distribution (weights are roughly normal), so
every code is used about equally often; int8's 255 codes are evenly spaced in [-1, 1].
Two 4-bit indices share one uint8 byte, so the stored bytes below are real.
:class:`QuantLinear` dequantises its weight on the fly in every forward pass, and again in
backward (:class:`QuantLinearFunction`), so autograd never keeps a float copy of the weight.

Not done here (real QLoRA does them): double quantisation of the absmax values,
paged optimisers, fused 4-bit matmul kernels.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import checks
from .errors import LoraTypeError, LoraValueError

KINDS = ("nf4", "int8")
BLOCK_SIZE = 64  # numbers per absmax block, as in QLoRA


def nf4_codebook() -> torch.Tensor:
    """The 16 NormalFloat-4 values in [-1, 1], shape (16,), derived as in the QLoRA paper.

    8 positive and 7 negative quantiles of N(0, 1), taken evenly between probabilities 0.5
    and ``offset`` (so the tails are not infinite), plus an exact zero, scaled to max 1.
    """
    offset = 0.5 * ((1 - 1 / 30) + (1 - 1 / 32))  # 0.96770833..., the paper's choice for 4 bits
    positive = torch.special.ndtri(torch.linspace(offset, 0.5, 9, dtype=torch.float64)[:-1])  # (8,)
    negative = -torch.special.ndtri(torch.linspace(offset, 0.5, 8, dtype=torch.float64)[:-1])  # (7,)
    values = torch.cat([negative, torch.zeros(1, dtype=torch.float64), positive]).sort().values  # (16,)
    return (values / values.max()).float()


NF4 = nf4_codebook()  # (16,) from -1 to 1, with 0 at index 7


def max_rounding_error(kind: str) -> float:
    """The largest |w - dequantize(quantize(w))| for a block with absmax 1: half the widest gap between codes."""
    if kind == "nf4":
        return float(NF4.diff().max()) / 2
    return 0.5 / 127  # int8: codes k / 127, one step apart


def _check_kind(kind: object, block_size: object) -> None:
    if not isinstance(kind, str) or kind not in KINDS:
        raise LoraValueError(f"kind must be one of {KINDS} (4-bit NormalFloat or 8-bit integers), got {kind!r}")
    checks.integer("block_size", block_size, 2, "block_size=64 as in QLoRA", hi=checks.MAX_BLOCK_SIZE)
    if block_size % 2:
        raise LoraValueError(f"block_size must be an even integer (two 4-bit codes per byte), e.g. 64, got {block_size}")


def quantize_blockwise(
    w: torch.Tensor, kind: str = "nf4", block_size: int = BLOCK_SIZE
) -> tuple[torch.Tensor, torch.Tensor]:
    """Quantise any float tensor ``w`` block by block; returns (codes, absmax).

    nf4: codes is uint8 (n_blocks · block_size / 2,), two 4-bit indices per byte.
    int8: codes is int8 (n_blocks · block_size,). absmax is float32 (n_blocks,).
    The last block is padded with zeros.
    """
    _check_kind(kind, block_size)
    flat = w.detach().float().flatten()  # (n,)
    flat = F.pad(flat, (0, -len(flat) % block_size))  # (n_blocks · block_size,)
    blocks = flat.view(-1, block_size)  # (n_blocks, block_size)
    absmax = blocks.abs().amax(dim=1)  # (n_blocks,)
    normed = blocks / absmax.clamp_min(torch.finfo(torch.float32).tiny)[:, None]  # (n_blocks, block_size) in [-1, 1]
    if kind == "int8":
        return torch.round(normed * 127).to(torch.int8).flatten(), absmax
    midpoints = (NF4[1:] + NF4[:-1]).to(w.device) / 2  # (15,)
    index = torch.bucketize(normed, midpoints).to(torch.uint8)  # (n_blocks, block_size): the nearest code
    packed = (index[:, 0::2] << 4) | index[:, 1::2]  # (n_blocks, block_size / 2): high nibble, low nibble
    return packed.flatten(), absmax


def dequantize_blockwise(
    codes: torch.Tensor, absmax: torch.Tensor, shape: torch.Size | tuple[int, ...], kind: str = "nf4"
) -> torch.Tensor:
    """Undo :func:`quantize_blockwise`: float32 tensor of ``shape`` from (codes, absmax)."""
    if kind == "int8":
        values = codes.float() / 127  # (n_blocks · block_size,)
    else:
        index = torch.stack([codes >> 4, codes & 0x0F], dim=-1).flatten().long()  # (n_blocks · block_size,)
        values = NF4.to(codes.device)[index]  # (n_blocks · block_size,)
    blocks = values.view(len(absmax), -1) * absmax[:, None]  # (n_blocks, block_size)
    return blocks.flatten()[: torch.Size(shape).numel()].view(shape)


class QuantLinearFunction(torch.autograd.Function):
    """y = x Wᵀ + b with the frozen W dequantised from (codes, absmax) in forward, and again in backward.

    ``F.linear(x, dequantize(...), b)`` would be the same forward, but autograd would keep that
    dequantised float W (out · in · 4 bytes) until backward, because the input's gradient
    needs it: a training step would hold a float32 copy of every quantised weight, as much as
    a float base. Here autograd keeps only ``codes`` and ``absmax``, the layer's own buffers
    (no new memory), and backward dequantises W a second time: less memory for one more
    dequantisation per step, as QLoRA does. W and b are frozen: only x gets a gradient.
    """

    @staticmethod
    def forward(ctx, x, codes, absmax, bias, shape, kind):
        """x (..., in), codes and absmax as stored, bias (out,) or None, shape = (out, in) -> y (..., out)."""
        w = dequantize_blockwise(codes, absmax, shape, kind).to(x.dtype)  # (out, in), freed when forward returns
        ctx.save_for_backward(codes, absmax)  # the buffers themselves, not copies
        ctx.shape, ctx.kind = shape, kind
        return F.linear(x, w, bias)  # (..., out)

    @staticmethod
    def backward(ctx, grad_y):
        """grad_y (..., out) -> grad_x (..., in) = grad_y W; no gradient for codes, absmax, bias, shape, kind."""
        grad_x = None
        if ctx.needs_input_grad[0]:
            codes, absmax = ctx.saved_tensors
            w = dequantize_blockwise(codes, absmax, ctx.shape, ctx.kind).to(grad_y.dtype)  # (out, in), again
            grad_x = grad_y @ w  # (..., out) @ (out, in) -> (..., in)
        return grad_x, None, None, None, None, None


class QuantLinear(nn.Module):
    """A frozen ``nn.Linear`` whose weight is stored quantised and dequantised in every forward (and backward).

    Buffers, not parameters: ``codes`` and ``absmax`` (see :func:`quantize_blockwise`) and the
    float ``bias``. Nothing here trains; LoRA (``inject_lora``) trains on top of it.
    """

    def __init__(self, linear: nn.Linear, kind: str = "nf4", block_size: int = BLOCK_SIZE) -> None:
        super().__init__()
        if not isinstance(linear, nn.Linear):
            raise LoraTypeError(f"QuantLinear quantises an nn.Linear, got {type(linear).__name__}")
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.kind, self.block_size = kind, block_size
        codes, absmax = quantize_blockwise(linear.weight, kind, block_size)
        self.register_buffer("codes", codes)
        self.register_buffer("absmax", absmax)
        bias = None if linear.bias is None else linear.bias.detach().clone()
        self.register_buffer("bias", bias)

    def dequantize(self) -> torch.Tensor:
        """The weight as float32, shape (out, in)."""
        return dequantize_blockwise(self.codes, self.absmax, (self.out_features, self.in_features), self.kind)

    @property
    def weight(self) -> torch.Tensor:
        """W as LoRA reads it, like ``nn.Linear.weight``: a new float32 (out, in) tensor, dequantised on each read.

        Read-only: writing into it changes nothing stored (which is why merge_lora refuses a quantised base)."""
        return self.dequantize()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., in) -> (..., out) with the dequantised weight; backward dequantises again (QuantLinearFunction)."""
        shape = (self.out_features, self.in_features)
        return QuantLinearFunction.apply(x, self.codes, self.absmax, self.bias, shape, self.kind)

    def stored_bytes(self) -> int:
        """Bytes of the quantised weight as stored: the codes plus one float32 absmax per block."""
        return self.codes.numel() * self.codes.element_size() + self.absmax.numel() * self.absmax.element_size()

    def extra_repr(self) -> str:
        shape = f"in_features={self.in_features}, out_features={self.out_features}"
        return f"{shape}, kind={self.kind}, block_size={self.block_size}"


@dataclass(frozen=True)
class QuantReport:
    """What :func:`quantize_base` did to the Linear weights (biases stay float32 and are not counted)."""

    kind: str
    layers: int  # Linear layers replaced
    float32_bytes: int  # their weights as float32
    stored_bytes: int  # their weights as stored: codes + absmax
    max_abs_error: float  # largest |w - dequantize(quantize(w))| over all weights
    mean_abs_error: float  # mean of the same

    @property
    def ratio(self) -> float:
        """How many times smaller the stored weights are than float32."""
        return self.float32_bytes / self.stored_bytes

    def __str__(self) -> str:
        return (
            f"{self.kind}: {self.layers} Linear layers, {self.float32_bytes:,} bytes as float32 -> "
            f"{self.stored_bytes:,} bytes stored ({self.ratio:.2f}x smaller); "
            f"round-trip error max {self.max_abs_error:.3g}, mean {self.mean_abs_error:.3g}"
        )


def quantize_base(model: nn.Module, kind: str = "nf4", block_size: int = BLOCK_SIZE) -> QuantReport:
    """Replace every ``nn.Linear`` of ``model`` by a frozen :class:`QuantLinear`, in place.

    Call it on a fresh base, before ``inject_lora``: the Linear layers become frozen,
    quantised bases and LoRA then wraps them (QLoRA). Returns the bytes and the error.
    """
    checks.model(model, "quantize_base")
    _check_kind(kind, block_size)
    if any(hasattr(m, "lora_A") or isinstance(m, QuantLinear) for m in model.modules()):  # LoRA layers hold lora_A
        raise LoraValueError(
            "quantize_base needs a plain float base, but this model already has LoRA or quantised layers; "
            "start from a fresh base: model = load_base(); quantize_base(model); inject_lora(model, ...)"
        )
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not names:
        raise LoraValueError("model has no nn.Linear layers to quantise")
    broken = [n for n in names if not bool(torch.isfinite(model.get_submodule(n).weight).all())]
    if broken:
        raise LoraValueError(f"the weights of {broken} hold NaN or inf; quantise a finite base (load_base())")
    fp32 = stored = 0
    errors, quantised = [], {}
    for name in names:  # every layer quantised before the model changes
        linear = model.get_submodule(name)
        q = QuantLinear(linear, kind, block_size)
        errors.append((linear.weight.detach().float() - q.dequantize()).abs().flatten())
        fp32 += linear.weight.numel() * 4
        stored += q.stored_bytes()
        quantised[name] = q
    for name, q in quantised.items():
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child, q)
    error = torch.cat(errors)  # (all Linear weights,)
    return QuantReport(kind, len(names), fp32, stored, error.max().item(), error.mean().item())
