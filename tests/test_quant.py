"""Toy QLoRA: NF4 and int8 block-wise quantisation, a quantised frozen base, LoRA trained on top."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from conftest import assert_same, snapshot
from hypothesis import given, settings
from hypothesis import strategies as st

from lora_mini import (
    BASE_TASKS,
    NF4,
    DoRALinear,
    LoRALinear,
    QuantLinear,
    base_accuracy,
    count_parameters,
    dequantize_blockwise,
    evaluate,
    account_training_step,
    inject_lora,
    load_base,
    make_batch,
    merge_lora,
    nf4_codebook,
    quantize_base,
    quantize_blockwise,
    train,
)
from lora_mini.quant import QuantLinearFunction, max_rounding_error

QV = ["q_proj", "v_proj"]

# Table of NF4 values as published with QLoRA (bitsandbytes' NF4 map), to check our derivation against.
PUBLISHED_NF4 = [
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
    -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
    0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
    0.7229568362236023, 1.0,
]


def _batch(n=8):
    return make_batch("rotate", n, torch.Generator().manual_seed(1))[0]


def test_nf4_codebook_derived_from_normal_quantiles_matches_the_published_table():
    codes = nf4_codebook()
    assert codes.shape == (16,) and torch.equal(codes, NF4)
    torch.testing.assert_close(codes, torch.tensor(PUBLISHED_NF4), atol=1e-6, rtol=0)
    assert (codes.diff() > 0).all() and codes[7] == 0  # sorted, with an exact zero


@settings(max_examples=40, deadline=None)
@given(
    kind=st.sampled_from(["nf4", "int8"]),
    rows=st.integers(1, 20),
    cols=st.integers(1, 70),
    block=st.sampled_from([2, 8, 64]),
    scale=st.floats(1e-3, 1e3),
    seed=st.integers(0, 2**16),
)
def test_round_trip_error_within_half_the_widest_code_gap_times_absmax(kind, rows, cols, block, scale, seed):
    w = scale * torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed))
    codes, absmax = quantize_blockwise(w, kind, block)
    back = dequantize_blockwise(codes, absmax, w.shape, kind)
    assert back.shape == w.shape and back.dtype == torch.float32
    n_blocks = -(-w.numel() // block)
    assert absmax.shape == (n_blocks,)
    padded = F.pad(w.flatten(), (0, n_blocks * block - w.numel())).view(n_blocks, block)
    torch.testing.assert_close(absmax, padded.abs().amax(1))
    bound = absmax[:, None] * max_rounding_error(kind) * (1 + 1e-5)  # (n_blocks, 1), a little float slack
    error = F.pad((w - back).flatten(), (0, n_blocks * block - w.numel())).view(n_blocks, block)
    assert (error.abs() <= bound).all()
    assert (back.abs().flatten() <= absmax.repeat_interleave(block)[: w.numel()] * (1 + 1e-6)).all()


def test_nf4_picks_the_nearest_code_and_packs_two_per_byte():
    w = torch.randn(8, 64)
    codes, absmax = quantize_blockwise(w, "nf4", 64)
    assert codes.dtype == torch.uint8 and codes.numel() == w.numel() // 2  # 4 bits per weight
    back = dequantize_blockwise(codes, absmax, w.shape, "nf4")
    normed = w / absmax.repeat_interleave(64).view(8, 64)
    nearest = NF4[(normed[..., None] - NF4).abs().argmin(-1)]  # brute force over all 16 codes
    torch.testing.assert_close(back, nearest * absmax.repeat_interleave(64).view(8, 64))
    exact = NF4.repeat(4) * 3.0  # (64,): every code times an absmax of 3, round-trips exactly
    assert torch.equal(dequantize_blockwise(*quantize_blockwise(exact, "nf4"), exact.shape, "nf4"), exact)


def test_int8_codes_are_one_byte_and_zero_blocks_stay_zero():
    w = torch.zeros(3, 64)
    w[1] = torch.linspace(-2, 2, 64)
    codes, absmax = quantize_blockwise(w, "int8", 64)
    assert codes.dtype == torch.int8 and codes.numel() == w.numel()
    back = dequantize_blockwise(codes, absmax, w.shape, "int8")
    assert torch.equal(back[0], w[0]) and torch.equal(back[2], w[2])
    assert (back[1] - w[1]).abs().max() <= 2 / 254 + 1e-7


def test_quant_linear_forward_uses_the_dequantised_weight():
    linear = nn.Linear(40, 24)
    q = QuantLinear(linear, "nf4")
    x = torch.randn(3, 5, 40)
    torch.testing.assert_close(q(x), F.linear(x, q.dequantize(), linear.bias))
    assert list(q.parameters()) == []  # nothing to train
    assert set(q.state_dict()) == {"codes", "absmax", "bias"} and q.codes.dtype == torch.uint8
    assert q.stored_bytes() == 40 * 24 // 2 + 4 * (40 * 24 // 64)
    assert (q.dequantize() - linear.weight).abs().max() <= q.absmax.max() * max_rounding_error("nf4")
    w = q.weight  # what LoRA reads, as from an nn.Linear: W dequantised, a fresh tensor on each read
    assert w.shape == linear.weight.shape and torch.equal(w, q.dequantize())
    w.add_(1.0)  # writing into it changes nothing stored
    assert torch.equal(q.weight, q.dequantize()) and not torch.equal(q.weight, w)


def _old_forward(self, x):
    """QuantLinear.forward before QuantLinearFunction: autograd kept the dequantised W for backward."""
    return F.linear(x, self.dequantize().to(x.dtype), self.bias)


def _qlora(kind="nf4"):
    torch.manual_seed(0)
    model = load_base().cpu()
    quantize_base(model, kind)
    inject_lora(model, QV, r=4, alpha=8)
    with torch.no_grad():  # B = 0 would make every gradient of A zero: give B some values
        for m in model.modules():
            if isinstance(m, LoRALinear):
                m.lora_B.normal_(0, 0.1)
    return model.train()


@pytest.mark.parametrize("kind", ["nf4", "int8"])
@pytest.mark.parametrize("bias", [True, False])
def test_quant_linear_function_matches_dequantise_then_linear(kind, bias):
    q = QuantLinear(nn.Linear(96, 40, bias=bias), kind)
    x = torch.randn(4, 7, 96, requires_grad=True)
    x_old = x.detach().clone().requires_grad_()
    y, y_old = q(x), _old_forward(q, x_old)
    assert y.shape == (4, 7, 40) and torch.equal(y, y_old)  # bit for bit the same forward
    grad_y = torch.randn_like(y)
    y.backward(grad_y)
    y_old.backward(grad_y)
    assert torch.allclose(x.grad, x_old.grad, atol=1e-6, rtol=1e-5)
    assert torch.allclose(x.grad, grad_y @ q.dequantize(), atol=1e-6, rtol=1e-5)  # grad_x = grad_y W
    with torch.no_grad():
        assert torch.equal(q(x), y)  # without autograd, the same numbers


def test_quant_linear_function_gradcheck_in_float64():
    """The Function's backward (and its own backward) against finite differences, in float64."""
    q = QuantLinear(nn.Linear(12, 8).double(), "nf4", block_size=8)  # bias float64, absmax float32
    x = torch.randn(2, 3, 12, dtype=torch.float64, requires_grad=True)
    shape = (q.out_features, q.in_features)
    f = lambda x: QuantLinearFunction.apply(x, q.codes, q.absmax, q.bias, shape, q.kind)  # noqa: E731
    assert f(x).dtype == torch.float64
    assert torch.autograd.gradcheck(f, (x,))
    assert torch.autograd.gradgradcheck(f, (x,))


@pytest.mark.parametrize("kind", ["nf4", "int8"])
def test_qlora_model_logits_and_gradients_match_the_old_path(kind, monkeypatch):
    model = _qlora(kind)
    idx, targets = make_batch("rotate", 16, torch.Generator().manual_seed(2))
    results = []
    for forward in [QuantLinear.forward, _old_forward]:
        monkeypatch.setattr(QuantLinear, "forward", forward)
        model.zero_grad(set_to_none=True)
        logits, loss = model(idx, targets)
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
        results.append((logits.detach(), grads))
    (logits, grads), (logits_old, grads_old) = results
    assert torch.equal(logits, logits_old)
    assert grads.keys() == grads_old.keys() and len(grads) == 8  # A and B of q and v in 2 blocks
    assert all(g.abs().sum() > 0 for g in grads.values())
    for name, g in grads.items():
        assert torch.allclose(g, grads_old[name], atol=1e-6, rtol=1e-4), name


def _saved_bytes(model, batch):
    """Bytes autograd saves for backward in one forward, not counting the model's own parameters and buffers.

    Also returns the float tensors saved with the shape of a QuantLinear weight, (out, in) or (in, out).
    """
    weights = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers()]}
    quant_shapes = {s for m in model.modules() if isinstance(m, QuantLinear)
                    for s in [(m.out_features, m.in_features), (m.in_features, m.out_features)]}
    seen, weight_like = {}, []

    def pack(t):
        if t.untyped_storage().data_ptr() not in weights:
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            if t.is_floating_point() and tuple(t.shape) in quant_shapes:
                weight_like.append(tuple(t.shape))
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(*batch)
    return sum(seen.values()), weight_like


def test_qlora_saves_no_float_copy_of_the_quantised_weights(monkeypatch):
    batch = make_batch("rotate", 16, torch.Generator().manual_seed(2))
    torch.manual_seed(0)
    float_model = load_base().cpu()
    inject_lora(float_model, QV, r=4, alpha=8)
    q_model = _qlora()
    needs_input_grad = []  # float32 bytes of each QuantLinear whose input requires grad, so backward needs W
    hooks = [m.register_forward_pre_hook(lambda m, args: needs_input_grad.append(4 * m.out_features * m.in_features)
                                         if args[0].requires_grad else None)
             for m in q_model.modules() if isinstance(m, QuantLinear)]
    float_bytes, _ = _saved_bytes(float_model, batch)
    q_bytes, q_weight_like = _saved_bytes(q_model, batch)
    for h in hooks:
        h.remove()
    assert len(needs_input_grad) == 10  # 13 Linear layers; block 0's q, k, v see an input without gradient
    assert q_weight_like == []
    assert q_bytes == float_bytes  # QLoRA saves the same activations as LoRA on the float base, nothing more
    monkeypatch.setattr(QuantLinear, "forward", _old_forward)
    old_bytes, old_weight_like = _saved_bytes(q_model, batch)
    assert old_bytes == q_bytes + sum(needs_input_grad)  # the old path kept a float32 W for each of them
    assert len(old_weight_like) == 10
    monkeypatch.undo()
    report, float_report = account_training_step(q_model, batch), account_training_step(float_model, batch)
    assert report.activations == float_report.activations and report.total < float_report.total


@pytest.mark.parametrize("kind, bytes_per_weight", [("nf4", 0.5 + 4 / 64), ("int8", 1 + 4 / 64)])
def test_quantize_base_reports_real_bytes_and_error(kind, bytes_per_weight):
    model = load_base().cpu()
    weights = {n: m.weight.clone() for n, m in model.named_modules() if isinstance(m, nn.Linear)}
    x = _batch()
    before = model(x)[0]
    report = quantize_base(model, kind)
    assert report.layers == len(weights) == 13  # 6 per block, 2 blocks, lm_head
    n = sum(w.numel() for w in weights.values())
    assert report.float32_bytes == 4 * n
    assert report.stored_bytes == int(n * bytes_per_weight)  # every toy weight count is a multiple of 64
    stored = sum(m.codes.numel() * m.codes.element_size() + 4 * m.absmax.numel()
                 for m in model.modules() if isinstance(m, QuantLinear))
    assert report.stored_bytes == stored
    errors = [(model.get_submodule(name).dequantize() - w).abs() for name, w in weights.items()]
    assert report.max_abs_error == pytest.approx(max(e.max().item() for e in errors))
    assert report.mean_abs_error == pytest.approx(torch.cat([e.flatten() for e in errors]).mean().item(), rel=1e-4)
    assert not any(isinstance(m, nn.Linear) for m in model.modules())
    assert not torch.equal(model(x)[0], before)  # the logits move a little ...
    for task, acc in evaluate(model, BASE_TASKS).items():  # ... but the base still does its tasks
        assert acc >= base_accuracy()[task] - 0.02, (task, acc)
    assert f"{report.stored_bytes:,}" in str(report)


def test_int8_is_more_accurate_and_nf4_smaller():
    nf4, int8 = quantize_base(load_base().cpu(), "nf4"), quantize_base(load_base().cpu(), "int8")
    assert nf4.stored_bytes < int8.stored_bytes < nf4.float32_bytes
    assert int8.max_abs_error < nf4.max_abs_error
    assert nf4.ratio > 7


def test_qlora_trains_lora_on_a_frozen_quantised_base():
    model = load_base().cpu()
    quantize_base(model, "nf4")
    x = _batch()
    before = model(x)[0]
    names = inject_lora(model, QV, r=4, alpha=8)
    assert all(isinstance(model.get_submodule(n).base, QuantLinear) for n in names)
    assert torch.equal(model(x)[0], before)  # B = 0: exactly the quantised base
    assert count_parameters(model).trainable == 4 * 4 * (96 + 96)
    frozen = {k: v.clone() for k, v in model.state_dict().items() if "lora_" not in k}
    history = train(model, "rotate", steps=20, lr=1e-2, progress=False)
    model.cpu()  # train() moves the model to CUDA when there is one
    assert history.loss[-1] < history.loss[0]
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in frozen.items())  # codes untouched


def test_dora_on_a_quantised_base_uses_the_dequantised_weight():
    model = load_base().cpu()
    quantize_base(model, "int8")
    x = _batch()
    before = model(x)[0]
    inject_lora(model, QV, r=4, alpha=8, use_dora=True)
    layer = model.blocks[0].attn.q_proj
    assert isinstance(layer, DoRALinear)
    torch.testing.assert_close(layer.lora_magnitude_vector, layer.base.dequantize().norm(dim=1))
    torch.testing.assert_close(model(x)[0], before, atol=1e-5, rtol=1e-5)


def test_merge_and_pissa_on_a_quantised_base_are_refused():
    model = load_base().cpu()
    quantize_base(model, "nf4")
    before = snapshot(model)
    with pytest.raises(ValueError, match="PiSSA needs a float base"):
        inject_lora(model, QV, r=4, alpha=8, init_lora_weights="pissa")
    assert_same(before, snapshot(model))
    inject_lora(model, QV, r=4, alpha=8)
    before = snapshot(model)
    with pytest.raises(ValueError, match="keep the adapter unmerged"):
        merge_lora(model)
    with pytest.raises(ValueError, match="QuantLinear"):
        model.blocks[0].attn.q_proj.merge()
    assert_same(before, snapshot(model))
    assert not any(m.merged for m in model.modules() if isinstance(m, LoRALinear))


def test_quantize_base_bad_input():
    model = load_base().cpu()
    before = snapshot(model)
    with pytest.raises(ValueError, match="kind must be one of"):
        quantize_base(model, "fp4")
    with pytest.raises(ValueError, match="block_size must be an even integer"):
        quantize_base(model, "nf4", block_size=63)
    assert_same(before, snapshot(model))
    inject_lora(model, QV, r=4, alpha=8)
    before = snapshot(model)
    with pytest.raises(ValueError, match="start from a fresh base"):
        quantize_base(model)
    assert_same(before, snapshot(model))
    with pytest.raises(TypeError, match="quantises an nn.Linear"):
        QuantLinear(nn.Embedding(3, 4))
