"""LoRA variants as options of inject_lora: rsLoRA, DoRA, PiSSA, and LoRA+'s parameter groups."""
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from conftest import assert_same, snapshot
from hypothesis import given, settings
from hypothesis import strategies as st

from lora_mini import (
    DoRALinear,
    LoRALinear,
    count_parameters,
    disable_lora,
    inject_lora,
    load_adapter,
    load_base,
    lora_state_dict,
    loraplus_param_groups,
    make_batch,
    merge_lora,
    mixed_adapters,
    reset_lora,
    save_adapter,
    train,
    unmerge_lora,
)

QV = ["q_proj", "v_proj"]


def _batch(n=8):
    return make_batch("rotate", n, torch.Generator().manual_seed(1))[0]


def _randomise(model, std=0.05, seed=0):
    """Non-zero B (and a perturbed DoRA magnitude), as if trained."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, LoRALinear):
                m.lora_B.copy_(std * torch.randn(m.lora_B.shape, generator=g))
            if isinstance(m, DoRALinear):
                m.lora_magnitude_vector.mul_(1 + 0.1 * torch.randn(m.lora_magnitude_vector.shape, generator=g))


# --- rsLoRA -------------------------------------------------------------------------------------


@settings(max_examples=20, deadline=None)
@given(r=st.integers(1, 64), alpha=st.floats(0.5, 64))
def test_rslora_scales_by_alpha_over_sqrt_r(r, alpha):
    plain = LoRALinear(nn.Linear(8, 8), r=r, alpha=alpha)
    rs = LoRALinear(nn.Linear(8, 8), r=r, alpha=alpha, use_rslora=True)
    assert plain.scaling == alpha / r
    assert rs.scaling == alpha / math.sqrt(r)
    nn.init.normal_(rs.lora_B)
    x = torch.randn(3, 8)
    expected = rs.base(x) + alpha / math.sqrt(r) * x @ rs.lora_A.T @ rs.lora_B.T
    torch.testing.assert_close(rs(x), expected, atol=1e-4, rtol=1e-4)


def test_rslora_inject_sets_every_layer_and_starts_unchanged(base):
    x = _batch()
    before = base(x)[0]
    inject_lora(base, QV, r=16, alpha=8, use_rslora=True)
    layers = [m for m in base.modules() if isinstance(m, LoRALinear)]
    assert len(layers) == 4 and all(m.scaling == 8 / 4 and m.config.use_rslora for m in layers)
    assert "use_rslora=True" in repr(layers[0])
    assert torch.equal(base(x)[0], before)


def test_rslora_adapter_file_round_trip_and_mismatch(tmp_path):
    model = load_base().cpu()
    inject_lora(model, QV, r=4, alpha=8, use_rslora=True)
    _randomise(model)
    path = save_adapter(model, tmp_path / "rs.safetensors")
    fresh = load_base().cpu()
    inject_lora(fresh, QV, r=4, alpha=8, use_rslora=True)
    load_adapter(fresh, path)
    x = _batch()
    assert torch.equal(fresh(x)[0], model(x)[0])
    plain = load_base().cpu()
    inject_lora(plain, QV, r=4, alpha=8)
    before = snapshot(plain)
    with pytest.raises(ValueError, match="use_rslora=True but the model has r=4, alpha=8, use_rslora=False"):
        load_adapter(plain, path)
    assert_same(before, snapshot(plain))


# --- DoRA ---------------------------------------------------------------------------------------


def _dora_reference(layer, x, detach_norm=True):
    """y = m ⊙ (W + ΔW) x / ‖W + ΔW‖_row + b, written out with the full matrix."""
    w = layer.base.weight + layer.scaling * layer.lora_B @ layer.lora_A  # (out, in)
    norm = w.norm(dim=1)  # (out,)
    norm = norm.detach() if detach_norm else norm
    return x @ (layer.lora_magnitude_vector[:, None] * w / norm[:, None]).T + layer.base.bias


@settings(max_examples=25, deadline=None)
@given(d_in=st.integers(1, 24), d_out=st.integers(1, 24), r=st.integers(1, 8), rs=st.booleans())
def test_dora_forward_is_magnitude_times_unit_direction(d_in, d_out, r, rs):
    layer = DoRALinear(nn.Linear(d_in, d_out), r=r, alpha=2.0, use_rslora=rs)
    x = torch.randn(5, d_in)
    torch.testing.assert_close(layer(x), layer.base(x), atol=1e-5, rtol=1e-5)  # m = ‖W‖: the base at init
    nn.init.normal_(layer.lora_B)
    with torch.no_grad():
        layer.lora_magnitude_vector.mul_(torch.rand(d_out) + 0.5)
    torch.testing.assert_close(layer(x), _dora_reference(layer, x), atol=1e-4, rtol=1e-4)
    assert layer.lora_magnitude_vector.shape == (d_out,)


def test_dora_norm_is_a_constant_in_backward():
    layer = DoRALinear(nn.Linear(12, 10), r=3, alpha=6)
    nn.init.normal_(layer.lora_B)
    x = torch.randn(4, 12)
    grads = []
    for fn in (layer, lambda t: _dora_reference(layer, t), lambda t: _dora_reference(layer, t, detach_norm=False)):
        layer.zero_grad()
        (fn(x) ** 2).sum().backward()
        grads.append(layer.lora_B.grad.clone())
    torch.testing.assert_close(grads[0], grads[1], atol=1e-4, rtol=1e-4)  # as with a detached norm
    assert not torch.allclose(grads[0], grads[2], atol=1e-4, rtol=1e-4)  # and not as with a live one


def test_dora_dropout_drops_the_input_of_the_whole_dora_term():
    layer = DoRALinear(nn.Linear(12, 10), r=3, alpha=6, dropout=0.5).train()
    nn.init.normal_(layer.lora_B)
    x = torch.randn(4, 12)
    torch.manual_seed(5)
    got = layer(x)
    torch.manual_seed(5)
    xd = F.dropout(x, 0.5, training=True)  # the same mask: dropout is the layer's only random op
    scale = layer.lora_magnitude_vector / layer.weight_norm()
    delta_x = layer.scaling * (xd @ layer.lora_A.T @ layer.lora_B.T)  # (4, 10)
    want = layer.base(x) + (scale - 1) * (xd @ layer.base.weight.T) + scale * delta_x
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_dora_inject_trains_magnitude_and_counts_it(base):
    x = _batch()
    before = base(x)[0]
    names = inject_lora(base, QV, r=4, alpha=8, use_dora=True)
    layers = [base.get_submodule(n) for n in names]
    assert all(isinstance(m, DoRALinear) for m in layers)
    torch.testing.assert_close(base(x)[0], before, atol=1e-5, rtol=1e-5)  # logits up to ~10: float32 rounding
    assert count_parameters(base).trainable == sum(4 * (96 + 96) + 96 for _ in layers)
    assert all(m.lora_magnitude_vector.requires_grad for m in layers)
    m0 = {n: base.get_submodule(n).lora_magnitude_vector.clone() for n in names}
    train(base, "rotate", steps=5, lr=1e-2, progress=False)
    base.cpu()  # train() moves the model to CUDA when there is one
    assert all(not torch.equal(base.get_submodule(n).lora_magnitude_vector, m0[n]) for n in names)
    parts = ("lora_A", "lora_B", "lora_magnitude_vector")
    assert set(lora_state_dict(base)) == {f"{n}.{p}" for n in names for p in parts}


def test_dora_merge_equals_unmerged_and_unmerge_restores(base):
    inject_lora(base, QV + ["fc1"], r=4, alpha=8, use_dora=True)
    _randomise(base)
    x = _batch()
    weights = {n: p.clone() for n, p in base.named_parameters() if n.endswith("base.weight")}
    unmerged = base(x)[0]
    merge_lora(base)
    torch.testing.assert_close(base(x)[0], unmerged, atol=1e-5, rtol=0)
    unmerge_lora(base)
    for n, w in weights.items():
        torch.testing.assert_close(base.get_parameter(n), w, atol=1e-6, rtol=0)
    torch.testing.assert_close(base(x)[0], unmerged, atol=1e-5, rtol=0)


def test_merged_dora_survives_a_state_dict_round_trip(base):
    """state_dict of a model with merged DoRA layers, loaded into a fresh model prepared the same way (DoRA
    injected, merged): the same outputs merged, and after unmerge_lora on both."""
    inject_lora(base, QV, r=4, alpha=8, use_dora=True)
    _randomise(base)
    x = _batch()
    merge_lora(base)
    state = {k: v.clone() for k, v in base.state_dict().items()}
    fresh = load_base().cpu()
    inject_lora(fresh, QV, r=4, alpha=8, use_dora=True)
    merge_lora(fresh)
    assert not torch.equal(fresh(x)[0], base(x)[0])  # the round trip has something to carry
    fresh.load_state_dict(state)
    assert torch.equal(fresh(x)[0], base(x)[0])
    unmerge_lora(base)
    unmerge_lora(fresh)
    assert torch.equal(fresh(x)[0], base(x)[0])


def test_dora_reset_and_disable_give_the_base_again(base):
    x = _batch()
    plain = base(x)[0]
    inject_lora(base, QV, r=4, alpha=8, use_dora=True)
    _randomise(base)
    assert not torch.allclose(base(x)[0], plain, atol=1e-3)
    with disable_lora(base):
        assert torch.equal(base(x)[0], plain)
    reset_lora(base)
    torch.testing.assert_close(base(x)[0], plain, atol=1e-5, rtol=0)


def test_dora_is_refused_by_adapter_files_and_mixed_batches(base, tmp_path):
    inject_lora(base, QV, r=4, alpha=8, use_dora=True)
    with pytest.raises(ValueError, match="export_peft"):
        save_adapter(base, tmp_path / "d.safetensors")
    before = snapshot(base)
    with pytest.raises(ValueError, match="DoRA's magnitude"):
        with mixed_adapters(base, [tmp_path / "d.safetensors"], torch.tensor([0])):
            pass
    assert_same(before, snapshot(base))


# --- PiSSA --------------------------------------------------------------------------------------


@pytest.mark.parametrize("use_rslora", [False, True])
def test_pissa_starts_unchanged_from_the_principal_singular_part(base, use_rslora):
    x = _batch()
    before = base(x)[0]
    original = base.blocks[0].attn.q_proj.weight.clone()  # (96, 96)
    inject_lora(base, QV, r=8, alpha=16, use_rslora=use_rslora, init_lora_weights="pissa")
    torch.testing.assert_close(base(x)[0], before, atol=1e-5, rtol=1e-5)  # logits up to ~10: float32 rounding
    layer = base.blocks[0].attn.q_proj
    U, S, Vh = torch.linalg.svd(original)
    top = U[:, :8] @ torch.diag(S[:8]) @ Vh[:8]  # the best rank-8 approximation of W
    torch.testing.assert_close(layer.delta_weight(), top, atol=1e-5, rtol=0)
    torch.testing.assert_close(layer.base.weight, original - top, atol=1e-5, rtol=0)  # the residual is frozen
    assert not layer.base.weight.requires_grad and layer.lora_A.requires_grad
    assert "init_lora_weights='pissa'" in repr(layer)


def test_pissa_disable_runs_the_residual_not_the_original(base):
    x = _batch()
    original = base(x)[0]
    inject_lora(base, QV, r=8, alpha=16, init_lora_weights="pissa")
    residual = load_base().cpu()
    for i in range(2):
        for p in ("q_proj", "v_proj"):
            getattr(residual.blocks[i].attn, p).weight.data.copy_(getattr(base.blocks[i].attn, p).base.weight)
    with disable_lora(base):
        assert torch.equal(base(x)[0], residual(x)[0])
        assert not torch.allclose(base(x)[0], original, atol=1e-2)


def test_pissa_merge_gives_back_the_original_weight_at_init(base):
    original = base.blocks[1].attn.v_proj.weight.clone()
    inject_lora(base, ["v_proj"], r=4, alpha=8, init_lora_weights="pissa")
    x = _batch()
    unmerged = base(x)[0]
    merge_lora(base)
    torch.testing.assert_close(base.blocks[1].attn.v_proj.base.weight, original, atol=1e-5, rtol=0)
    torch.testing.assert_close(base(x)[0], unmerged, atol=1e-5, rtol=0)


def test_pissa_with_dora_starts_unchanged(base):
    x = _batch()
    before = base(x)[0]
    inject_lora(base, QV, r=4, alpha=8, use_dora=True, init_lora_weights="pissa")
    torch.testing.assert_close(base(x)[0], before, atol=1e-5, rtol=1e-5)  # logits up to ~10: float32 rounding


def test_pissa_refusals_name_the_fix(base, tmp_path):
    before = snapshot(base)
    with pytest.raises(ValueError, match="has only 18; use r <= 18"):
        inject_lora(base, ["q_proj", "lm_head"], r=32, alpha=32, init_lora_weights="pissa")
    assert_same(before, snapshot(base))
    inject_lora(base, QV, r=4, alpha=8, init_lora_weights="pissa")
    before = snapshot(base)
    with pytest.raises(ValueError, match="fresh base"):
        reset_lora(base)
    with pytest.raises(ValueError, match="residual base"):
        save_adapter(base, tmp_path / "p.safetensors")
    assert_same(before, snapshot(base))
    assert not (tmp_path / "p.safetensors").exists()


# --- LoRA+ --------------------------------------------------------------------------------------


@pytest.mark.parametrize("use_dora", [False, True])
def test_loraplus_groups_give_b_ratio_times_the_learning_rate(base, use_dora):
    inject_lora(base, QV, r=4, alpha=8, use_dora=use_dora)
    slow, fast = loraplus_param_groups(base, lr=1e-3, loraplus_lr_ratio=16)
    assert slow["lr"] == 1e-3 and fast["lr"] == 16e-3
    layers = [m for m in base.modules() if isinstance(m, LoRALinear)]
    assert {id(p) for p in slow["params"]} == {id(m.lora_A) for m in layers}
    fast_expected = {id(m.lora_B) for m in layers}
    if use_dora:  # as in PEFT: the magnitude vectors go with B
        fast_expected |= {id(m.lora_magnitude_vector) for m in layers}
    assert {id(p) for p in fast["params"]} == fast_expected
    trainable = {id(p) for p in base.parameters() if p.requires_grad}
    assert {id(p) for g in (slow, fast) for p in g["params"]} == trainable


def test_loraplus_adamw_first_step_moves_b_ratio_times_further(base):
    inject_lora(base, ["q_proj"], r=4, alpha=8)
    _randomise(base, std=0.1)  # B != 0, so A gets a gradient too
    layer = base.blocks[0].attn.q_proj
    a0, b0 = layer.lora_A.clone(), layer.lora_B.clone()
    opt = torch.optim.AdamW(loraplus_param_groups(base, lr=1e-3, loraplus_lr_ratio=8), weight_decay=0.0)
    idx, targets = make_batch("rotate", 16, torch.Generator().manual_seed(0))
    base(idx, targets)[1].backward()
    opt.step()
    # Adam's first step moves each weight by about lr (the update is g / |g|)
    torch.testing.assert_close((layer.lora_A - a0).abs().max().item(), 1e-3, atol=0, rtol=1e-2)
    torch.testing.assert_close((layer.lora_B - b0).abs().max().item(), 8e-3, atol=0, rtol=1e-2)


def test_loraplus_bad_input(base):
    with pytest.raises(ValueError, match="no LoRA layers"):
        loraplus_param_groups(base, lr=1e-3)
    inject_lora(base, QV, r=4, alpha=8)
    for kwargs, error in ((dict(lr=0), ValueError), (dict(lr=1e-3, loraplus_lr_ratio=-1), ValueError),
                          (dict(lr=float("inf")), ValueError), (dict(lr="1e-3"), TypeError)):
        with pytest.raises(error, match="must be a positive number"):
            loraplus_param_groups(base, **kwargs)


# --- bad combinations ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        (dict(init_lora_weights="foo"), ValueError, "init_lora_weights must be True .* or 'pissa'"),
        (dict(init_lora_weights="gaussian"), ValueError, "init_lora_weights must be True"),
        (dict(init_lora_weights=False), ValueError, "init_lora_weights must be True"),
        (dict(use_dora="yes"), TypeError, "use_dora must be True or False"),
        (dict(use_rslora=1), TypeError, "use_rslora must be True or False"),
    ],
)
def test_bad_variant_options_leave_the_model_alone(base, kwargs, error, words):
    before = snapshot(base)
    with pytest.raises(error, match=words):
        inject_lora(base, QV, r=4, alpha=8, **kwargs)
    assert_same(before, snapshot(base))


def test_reinjecting_with_another_variant_is_refused(base):
    inject_lora(base, QV, r=4, alpha=8, use_rslora=True)
    assert inject_lora(base, QV, r=4, alpha=8, use_rslora=True) == []  # the same settings: nothing to do
    before = snapshot(base)
    words = "already has LoRA with r=4, alpha=8, use_rslora=True; to use r=4, alpha=8, use_dora=True, start again"
    with pytest.raises(ValueError, match=words):
        inject_lora(base, QV, r=4, alpha=8, use_dora=True)
    assert_same(before, snapshot(base))
