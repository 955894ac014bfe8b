"""LoRALinear and model surgery: the math, merging, freezing, counting."""
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

import dataclasses

import pytest

from lora_mini import (
    LoraConfig,
    LoraTypeError,
    LoraValueError,
    LoRALinear,
    count_parameters,
    disable_lora,
    inject_lora,
    lora_state_dict,
    make_batch,
    merge_lora,
    train,
    unmerge_lora,
)

QV = ["q_proj", "v_proj"]


def _batch(n=8):
    return make_batch("rotate", n, torch.Generator().manual_seed(1))[0]


@settings(max_examples=30, deadline=None)
@given(
    d_in=st.integers(1, 40),
    d_out=st.integers(1, 40),
    r=st.integers(1, 16),
    alpha=st.floats(0.1, 64),
    lead=st.lists(st.integers(1, 4), min_size=0, max_size=2),
)
def test_forward_is_base_plus_scaled_low_rank_update(d_in, d_out, r, alpha, lead):
    layer = LoRALinear(nn.Linear(d_in, d_out), r=r, alpha=alpha)
    nn.init.normal_(layer.lora_B)
    x = torch.randn(*lead, d_in)
    assert layer.lora_A.shape == (r, d_in) and layer.lora_B.shape == (d_out, r)
    assert layer.scaling == alpha / r
    dw = layer.delta_weight()  # what merge adds: the forward (which never forms it) must agree
    assert dw.shape == (d_out, d_in) and torch.linalg.matrix_rank(dw) <= min(r, d_in, d_out)
    expected = x @ (layer.base.weight + dw).T + layer.base.bias
    torch.testing.assert_close(layer(x), expected, atol=1e-4, rtol=1e-4)
    assert layer(x).shape == (*lead, d_out)


@settings(max_examples=20, deadline=None)
@given(r=st.integers(1, 32), targets=st.sampled_from([["q_proj"], QV, ["fc1", "fc2"], ["k_proj", "o_proj", "fc2"]]))
def test_trainable_count_is_sum_of_r_times_in_plus_out(r, targets):
    from lora_mini import load_base

    model = load_base().cpu()
    total_before = count_parameters(model).total
    names = inject_lora(model, targets, r=r, alpha=2 * r)
    layers = [model.get_submodule(n) for n in names]
    expected = sum(r * (m.base.in_features + m.base.out_features) for m in layers)
    count = count_parameters(model)
    assert count.trainable == expected
    assert count.total == total_before + expected
    assert len(names) == 2 * len(targets)  # two blocks


def test_new_adapter_changes_nothing_until_trained(base):
    x = _batch()
    before = base(x)[0]
    inject_lora(base, QV, r=4, alpha=8)
    assert all(torch.count_nonzero(m.lora_B) == 0 for m in base.modules() if isinstance(m, LoRALinear))
    assert torch.equal(base(x)[0], before)  # B = 0: bit for bit the base model


def test_lora_config_is_checked_frozen_and_compares_what_fits():
    config = LoraConfig(r=4, alpha=8)
    assert config.scaling == 2.0 and LoraConfig(r=16, alpha=8, use_rslora=True).scaling == 2.0
    assert config == LoraConfig(r=4, alpha=8.0, dropout=0.1)  # dropout changes no weight: same adapter
    assert config != LoraConfig(r=4, alpha=8, use_rslora=True) and config != LoraConfig(r=8, alpha=8)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.r = 8
    for bad, error in ((dict(r=0), LoraValueError), (dict(alpha=-1), LoraValueError), (dict(use_dora="no"), LoraTypeError),
                       (dict(init_lora_weights="svd"), LoraValueError)):
        with pytest.raises(error):
            LoraConfig(**(dict(r=4, alpha=8) | bad))
    layer = LoRALinear(nn.Linear(8, 8), r=4, alpha=8, dropout=0.1)
    assert layer.config == config and layer.config.dropout == 0.1 and str(layer.config) == "r=4, alpha=8"


def test_lora_a_is_kaiming_uniform():
    layer = LoRALinear(nn.Linear(96, 96), r=64, alpha=1)
    bound = 1 / 96**0.5  # kaiming_uniform(a=sqrt(5)) bound = 1/sqrt(fan_in)
    assert layer.lora_A.abs().max() <= bound
    assert layer.lora_A.abs().max() > 0.9 * bound


def test_inject_freezes_everything_but_lora(base):
    names = inject_lora(base, QV, r=4, alpha=8)
    assert names == [f"blocks.{i}.attn.{p}" for i in range(2) for p in ("q_proj", "v_proj")]
    for module in base.modules():
        for name, p in module.named_parameters(recurse=False):
            assert p.requires_grad == (isinstance(module, LoRALinear) and name in ("lora_A", "lora_B"))


def test_inject_lora_refreezes_what_the_learner_unfroze_each_call(base):
    """As documented (and as PEFT's get_peft_model): each inject_lora leaves only LoRA trainable."""
    inject_lora(base, ["q_proj"], r=4, alpha=8)
    base.lm_head.weight.requires_grad_(True)
    assert inject_lora(base, ["v_proj"], r=4, alpha=8)  # a second call, on other layers
    assert not base.lm_head.weight.requires_grad
    assert "frozen again" in inject_lora.__doc__


def test_inject_twice_wraps_nothing_twice(base):
    inject_lora(base, QV, r=4, alpha=8)
    modules_before = [n for n, _ in base.named_modules()]
    assert inject_lora(base, QV, r=4, alpha=8) == []
    assert [n for n, _ in base.named_modules()] == modules_before
    assert inject_lora(base, ["q_proj", "k_proj"], r=4, alpha=8) == ["blocks.0.attn.k_proj", "blocks.1.attn.k_proj"]
    assert not any(isinstance(m.base, LoRALinear) for m in base.modules() if isinstance(m, LoRALinear))


def test_full_qualified_name_targets_one_layer(base):
    assert inject_lora(base, ["blocks.1.mlp.fc2"], r=2, alpha=2) == ["blocks.1.mlp.fc2"]
    assert isinstance(base.blocks[0].mlp.fc2, nn.Linear) and not isinstance(base.blocks[0].mlp.fc2, LoRALinear)


def test_merge_matches_unmerged_and_unmerge_restores(base):
    inject_lora(base, ["q_proj", "v_proj", "fc1"], r=4, alpha=8)
    train(base, "rotate", steps=30, lr=1e-2, progress=False)  # a real, trained adapter
    base.cpu().eval()
    x = _batch()
    weights = {n: p.clone() for n, p in base.named_parameters() if n.endswith("base.weight")}
    unmerged = base(x)[0].softmax(-1)  # next-token probabilities (B, T, vocab)
    merge_lora(base)
    torch.testing.assert_close(base(x)[0].softmax(-1), unmerged, atol=1e-5, rtol=0)
    merged_weights = {n: p.clone() for n, p in base.named_parameters()}
    merge_lora(base)  # twice: nothing more happens
    assert all(torch.equal(p, merged_weights[n]) for n, p in base.named_parameters())
    unmerge_lora(base)
    unmerge_lora(base)  # when not merged: nothing happens
    for n, w in weights.items():
        torch.testing.assert_close(base.get_parameter(n), w, atol=1e-6, rtol=0)
    torch.testing.assert_close(base(x)[0].softmax(-1), unmerged, atol=1e-5, rtol=0)


def test_merged_layer_output_matches_unmerged():
    layer = LoRALinear(nn.Linear(96, 96), r=8, alpha=16)
    nn.init.normal_(layer.lora_B, std=0.02)
    x = torch.randn(4, 17, 96)
    unmerged = layer(x)
    layer.merge()
    assert layer.merged
    torch.testing.assert_close(layer(x), unmerged, atol=1e-5, rtol=0)


def test_train_and_eval_modes_never_touch_weights(base):
    inject_lora(base, QV, r=4, alpha=8, dropout=0.1)
    for m in base.modules():
        if isinstance(m, LoRALinear):
            nn.init.normal_(m.lora_B)
    state = {k: v.clone() for k, v in base.state_dict().items()}
    for _ in range(2):
        base.train()
        base.eval()
    assert all(torch.equal(v, state[k]) for k, v in base.state_dict().items())
    assert not any(m.merged for m in base.modules() if isinstance(m, LoRALinear))


def test_base_weights_bitwise_unchanged_by_lora_training(base):
    frozen = {k: v.clone() for k, v in base.state_dict().items()}
    inject_lora(base, QV, r=4, alpha=8)
    train(base, "rotate", steps=5, lr=1e-2, progress=False)
    state = base.state_dict()
    for k, v in frozen.items():
        wrapped = k.replace("q_proj.", "q_proj.base.").replace("v_proj.", "v_proj.base.")
        assert torch.equal(state[wrapped], v), k
    assert any(torch.count_nonzero(t) for k, t in lora_state_dict(base).items() if k.endswith("lora_B"))


def test_disable_lora_runs_the_pure_base(base):
    x = _batch()
    plain = base(x)[0]
    inject_lora(base, QV, r=4, alpha=8)
    for m in base.modules():
        if isinstance(m, LoRALinear):
            nn.init.normal_(m.lora_B)
    adapted = base(x)[0]
    assert not torch.allclose(adapted, plain)
    with disable_lora(base):
        assert torch.equal(base(x)[0], plain)
    assert torch.equal(base(x)[0], adapted)


def test_param_count_prints_like_peft(base):
    total = sum(p.numel() for p in base.parameters())
    inject_lora(base, QV, r=4, alpha=8)
    lora = 4 * 4 * (96 + 96)  # 4 layers (q and v in 2 blocks), r = 4, each 96 -> 96
    c = count_parameters(base)
    assert (c.trainable, c.total) == (lora, total + lora)
    share = 100 * lora / (total + lora)
    assert str(c) == f"trainable params: {lora:,} || all params: {total + lora:,} || trainable%: {share:.4f}"
    assert share < 2.0  # the course's default: r=4 on q and v
