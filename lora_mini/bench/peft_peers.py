"""Section 4, peers: ``LoRALinear`` vs PEFT's and loralib's LoRA ``Linear``, one layer forward + backward."""
from __future__ import annotations

import copy
from functools import partial

import torch
import torch.nn as nn

from ..lora import LoRALinear
from .common import BenchConfig, Check
from .timing import interleaved


def three_lora_linears(d_in: int, d_out: int, r: int) -> dict[str, nn.Module]:
    """lora_mini's, PEFT's and loralib's LoRA Linear around one frozen (out, in) weight and bias, same A and B."""
    import loralib
    from peft import LoraConfig
    from peft.tuners.lora.layer import Linear as PeftLinear

    linear = nn.Linear(d_in, d_out)
    ours = LoRALinear(copy.deepcopy(linear), r=r, alpha=2 * r)
    nn.init.normal_(ours.lora_B, std=0.02)  # non-zero B: the three must agree on a real update
    peft_layer = PeftLinear(
        copy.deepcopy(linear), adapter_name="default", config=LoraConfig(r=r, lora_alpha=2 * r), r=r, lora_alpha=2 * r
    )
    peft_layer.base_layer.requires_grad_(False)  # PeftModel freezes the base; this layer alone does not
    theirs = loralib.Linear(d_in, d_out, r=r, lora_alpha=2 * r)
    theirs.bias.requires_grad_(False)  # loralib leaves the bias trainable (mark_only_lora_as_trainable freezes it)
    with torch.no_grad():
        peft_layer.lora_A["default"].weight.copy_(ours.lora_A)
        peft_layer.lora_B["default"].weight.copy_(ours.lora_B)
        theirs.weight.copy_(linear.weight)
        theirs.bias.copy_(linear.bias)
        theirs.lora_A.copy_(ours.lora_A)
        theirs.lora_B.copy_(ours.lora_B)
    return {"lora_mini": ours, "peft": peft_layer, "loralib": theirs}


def forward_backward(layer: nn.Module, x: torch.Tensor, grad: torch.Tensor) -> None:
    """One forward on x (tokens, in) and backward of ``grad`` (tokens, out), gradients cleared first."""
    x.grad = None
    for p in layer.parameters():
        p.grad = None
    layer(x).backward(grad)


def bench_peers(cfg: BenchConfig) -> tuple[dict, list[Check]]:
    """Forward + backward time of the three LoRA Linears at each (in, out, r, tokens) point.

    The input requires grad, as it does for every LoRA layer above the first, so backward
    computes the input gradient and the gradients of A and B (W and the bias are frozen).
    """
    try:
        import loralib  # noqa: F401
        import peft  # noqa: F401
    except ImportError:
        print("peers skipped: PEFT or loralib is not installed (pip install -r requirements-dev.txt)", flush=True)
        return {}, []
    points, checks = [], []
    for d_in, d_out, r, tokens in cfg.peer_points:
        torch.manual_seed(0)
        layers = three_lora_linears(d_in, d_out, r)
        x, grad = torch.randn(tokens, d_in, requires_grad=True), torch.randn(tokens, d_out)
        outs = [layer(x) for layer in layers.values()]
        if not all(torch.allclose(outs[0], o, atol=1e-5) for o in outs):
            raise RuntimeError(f"the three LoRA layers disagree at {(d_in, d_out, r, tokens)}")
        samples = interleaved({n: partial(forward_backward, layer, x, grad) for n, layer in layers.items()}, cfg)
        point = {"in": d_in, "out": d_out, "r": r, "tokens": tokens}
        point |= {f"{n}_seconds": samples.median(n) for n in layers}
        point |= {f"lora_mini/{peer}": samples.ratio("lora_mini", peer) for peer in ("peft", "loralib")}
        points.append(point)
        name = f"lora_mini / PEFT, (in, out, r, tokens) = {(d_in, d_out, r, tokens)}"
        checks.append(Check(name, point["lora_mini/peft"], 1.00))
    return {"points": points, "input_requires_grad": True}, checks
