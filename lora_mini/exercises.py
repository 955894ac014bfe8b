"""Checkers for the "now you write it" exercises: they run your function against lora_mini.

Each ``check_*`` takes your function, tries it on random inputs, prints what it found and
returns True when it agrees with the package. A function that still raises
``NotImplementedError`` gets "not implemented yet" (no exception), so a notebook can be
run top to bottom before you have written anything.
"""
from __future__ import annotations

import functools
import math
import numbers
from typing import Callable

import torch
import torch.nn as nn

from .lora import LoRALinear


def _report(ok: bool, message: str) -> bool:
    print(("✅ " if ok else "❌ ") + message)
    return ok


def _never_raises(check: Callable) -> Callable:
    """A checker reports whatever the learner's function returns or does; it never raises itself."""

    @functools.wraps(check)
    def wrapper(fn: Callable) -> bool:
        if not callable(fn):
            return _report(False, f"pass your function itself (its name, without parentheses), got {fn!r}")
        try:
            return check(fn)
        except Exception as e:  # a result no branch above foresaw
            return _report(False, f"could not check your result ({type(e).__name__}: {e}); "
                                  "return a float32 tensor of the shape the docstring gives")
    return wrapper


def _what(got: object) -> str:
    """A one-line description of any result."""
    if got is None:
        return "None: did you forget the `return`?"
    if isinstance(got, torch.Tensor):
        return f"a tensor of shape {tuple(got.shape)} ({got.dtype})"
    return f"{type(got).__name__}: {repr(got)[:80]}".replace("\n", " ")


def _tensor_problem(got: object, want: torch.Tensor, note: str = "", hint: str = "") -> str | None:
    """What is wrong with ``got`` as an answer shaped like ``want``, or None if it is comparable."""
    if got is None:
        return "your function returned None: did you forget the `return`?"
    if not isinstance(got, torch.Tensor):
        return f"expected a tensor of shape {tuple(want.shape)}, got {type(got).__name__}"
    if got.shape != want.shape:
        return f"shape {tuple(want.shape)} expected{note}, got {tuple(got.shape)}{hint}"
    if not got.dtype.is_floating_point:
        return f"expected a floating-point tensor, got dtype {got.dtype}: keep the inputs' dtype"
    return None


SHAPES = " (check the shapes: A is (r, in), B is (out, r), W is (out, in))"


def _call(fn: Callable, *args: object, shape_hint: str = SHAPES) -> tuple[object, str | None]:
    """Run the learner's function; return (result, None) or (None, what went wrong)."""
    try:
        return fn(*args), None
    except NotImplementedError:
        return None, "not implemented yet: replace the `raise NotImplementedError` line with your code"
    except Exception as e:  # the learner's bug, reported rather than raised
        hint = shape_hint if "shape" in str(e) else ""
        return None, f"your function raised {type(e).__name__}: {e}{hint}"


def _random_layer(d_in: int, d_out: int, r: int, alpha: float) -> LoRALinear:
    layer = LoRALinear(nn.Linear(d_in, d_out), r=r, alpha=alpha)
    nn.init.normal_(layer.lora_B)  # a "trained" B, so the low-rank path matters
    return layer


@_never_raises
@torch.no_grad()
def check_lora_forward(fn: Callable) -> bool:
    """``fn(x (N, in), W (out, in), b (out,), A (r, in), B (out, r), scaling) -> (N, out)``."""
    torch.manual_seed(0)
    for d_in, d_out, r, alpha in [(8, 32, 2, 4.0), (16, 16, 4, 8.0), (12, 5, 3, 1.5)]:
        layer = _random_layer(d_in, d_out, r, alpha)
        x = torch.randn(7, d_in)
        W, b, A, B = layer.base.weight, layer.base.bias, layer.lora_A, layer.lora_B
        got, error = _call(fn, x, W, b, A, B, layer.scaling)
        if error:
            return _report(False, error)
        want = layer(x)
        problem = _tensor_problem(got, want, "", ": x @ A.T is (N, r), then @ B.T gives (N, out); did you transpose A or B?")
        if problem:
            return _report(False, problem)
        got = got.to(want.dtype)  # a float64 answer is compared at float32
        if torch.allclose(got, x @ W.T + b + (x @ A.T) @ B.T, atol=1e-5) and layer.scaling != 1:
            return _report(False, "close, but the low-rank path is missing its scaling alpha / r")
        if torch.allclose(got, (x @ A.T) @ B.T * layer.scaling, atol=1e-5):
            return _report(False, "you return only the low-rank update: add the frozen layer's W x + b")
        if not torch.allclose(got, want, atol=1e-5):
            return _report(False, f"values differ from LoRALinear (largest gap {(got - want).abs().max():.3g}) "
                                  f"for in={d_in}, out={d_out}, r={r}")
    return _report(True, "your LoRA forward matches lora_mini.LoRALinear on three layer shapes")


@_never_raises
def check_trainable_params(fn: Callable) -> bool:
    """``fn(in_features, out_features, r) -> int``: trainable numbers LoRA adds to one Linear."""
    for d_in, d_out, r in [(96, 96, 4), (96, 384, 8), (4096, 11008, 16), (3, 5, 1)]:
        got, error = _call(fn, d_in, d_out, r)
        if error:
            return _report(False, error)
        layer = LoRALinear(nn.Linear(d_in, d_out, device="meta"), r=r, alpha=1)
        want = layer.lora_A.numel() + layer.lora_B.numel()
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if isinstance(got, bool) or not isinstance(got, numbers.Real):
            return _report(False, f"expected a whole number of parameters (an int), got {_what(got)}")
        if got == d_in * d_out:
            return _report(False, "that is the size of the frozen W; LoRA trains A (r x in) and B (out x r)")
        if got in (r * d_in, r * d_out):
            return _report(False, f"only one of the two matrices: for in={d_in}, out={d_out}, r={r} count A and B")
        if got != want:
            return _report(False, f"for in={d_in}, out={d_out}, r={r} expected {want:,}, got {got!r}")
    return _report(True, "r * (in + out): your formula matches the parameters of LoRALinear")


@_never_raises
@torch.no_grad()
def check_merge(fn: Callable) -> bool:
    """``fn(W (out, in), A (r, in), B (out, r), scaling) -> merged weight (out, in)``."""
    torch.manual_seed(1)
    for d_in, d_out, r, alpha in [(8, 32, 2, 4.0), (20, 6, 5, 10.0)]:
        layer = _random_layer(d_in, d_out, r, alpha)
        W = layer.base.weight.clone()
        got, error = _call(fn, W.clone(), layer.lora_A, layer.lora_B, layer.scaling)
        if error:
            return _report(False, error)
        layer.merge()
        want = layer.base.weight
        problem = _tensor_problem(got, want, " (the shape of W)", ": B @ A is (out, r) @ (r, in)")
        if problem:
            return _report(False, problem)
        got = got.to(want.dtype)  # a float64 answer is compared at float32
        if torch.allclose(got, W + layer.lora_B @ layer.lora_A, atol=1e-5):
            return _report(False, "close, but Delta W is scaling * B @ A: the scaling is missing")
        if not torch.allclose(got, want, atol=1e-5):
            return _report(False, f"values differ from LoRALinear.merge() (largest gap {(got - want).abs().max():.3g})")
    return _report(True, "your merge matches LoRALinear.merge(): W + scaling * B @ A")


@_never_raises
@torch.no_grad()
def check_subspace_similarity(fn: Callable) -> bool:
    """``fn(A1 (r1, in), A2 (r2, in), i, j) -> float``: the paper's φ, in [0, 1]."""
    from .analysis import subspace_similarity

    g = torch.Generator().manual_seed(2)
    for r1, r2, i, j in [(4, 8, 2, 5), (8, 8, 8, 3), (3, 6, 1, 1)]:
        A1, A2 = torch.randn(r1, 24, generator=g), torch.randn(r2, 24, generator=g)
        got, error = _call(fn, A1, A2, i, j, shape_hint=": U holds the RIGHT-singular vectors of A, Vh.T, shape (in, r)")
        if error:
            return _report(False, error)
        want = subspace_similarity(A1, A2, i, j)
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if isinstance(got, bool) or not isinstance(got, numbers.Real):
            return _report(False, f"expected one number (a float, or a 1-element tensor), got {_what(got)}")
        got = float(got)
        if abs(got - want * min(i, j)) < 1e-4 and min(i, j) > 1:
            return _report(False, "close: divide the squared norm by min(i, j), so that φ lies in [0, 1]")
        U1 = torch.linalg.svd(A1.double(), full_matrices=False).U
        if not math.isfinite(got):
            return _report(False, f"φ must be a number in [0, 1], got {got}: look for a division by zero")
        if abs(got - want) > 1e-4 and got > 1 + 1e-6:
            return _report(False, f"φ must lie in [0, 1], got {got:.3f}: use orthonormal singular vectors, not A itself")
        if abs(got - want) > 1e-4:
            return _report(False, f"for i={i}, j={j} expected {want:.4f}, got {got:.4f}: U holds the RIGHT-singular "
                                  f"vectors (columns of Vh.T, shape (in, r)), not U {tuple(U1.shape)}")
    return _report(True, "your φ matches lora_mini.analysis.subspace_similarity")
