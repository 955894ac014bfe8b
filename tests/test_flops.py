"""FLOP counts (lora_mini.flops) against the toy's matrix shapes worked out by hand."""
import copy

import pytest
import torch

from lora_mini import inject_lora, load_base, make_batch, merge_lora, quantize_base
from lora_mini.errors import LoraTypeError, LoraValueError
from lora_mini.flops import forward_flops, step_flops
from lora_mini.peers import inject_peer

B = 8


def _batch():
    return make_batch("rotate", B, torch.Generator().manual_seed(0))


def _by_hand(model, T):
    "Forward FLOPs of the plain toy at batch B, length T: (Linear layers, attention), 2 per multiply-add."
    c = model.config
    C, N, V = c.n_embd, B * T, c.vocab_size
    linear = c.n_layer * (4 * 2 * N * C * C + 2 * 2 * N * C * 4 * C) + 2 * N * C * V
    attention = c.n_layer * 2 * 2 * B * T * T * C  # q kᵀ and scores · v, all heads together
    return linear, attention


def _lora():
    torch.manual_seed(0)
    model = load_base().cpu()
    inject_lora(model, ["q_proj", "v_proj"], r=4, alpha=8)
    return model


def test_forward_of_the_base_is_its_matrix_products_attention_included():
    base, (idx, _) = load_base().cpu(), _batch()
    linear, attention = _by_hand(base, idx.shape[1])
    assert forward_flops(base, idx) == linear + attention


def test_full_step_is_three_forward_linear_products_and_attention_backward():
    base, batch = load_base().cpu(), _batch()
    linear, attention = _by_hand(base, batch[0].shape[1])
    # each Linear: forward, input gradient, weight gradient; attention backward: 5 products for forward's 2
    assert step_flops(base, batch) == 3 * linear + attention + 5 * attention // 2


def test_lora_step_does_less_than_full_and_leaves_the_model_alone():
    full, lora, batch = load_base().cpu(), _lora(), _batch()
    state = {k: v.clone() for k, v in lora.state_dict().items()}
    assert step_flops(lora, batch) < step_flops(full, batch)
    assert all(p.grad is None for p in lora.parameters())
    assert all(torch.equal(state[k], v) for k, v in lora.state_dict().items())


def test_merged_adapter_runs_the_base_products_unmerged_adds_two_thin_ones():
    base, lora, (idx, _) = load_base().cpu(), _lora().eval(), _batch()
    merged = copy.deepcopy(lora)
    merge_lora(merged)
    N, C, r = idx.numel(), base.config.n_embd, 4
    extra = 4 * (2 * N * C * r + 2 * N * r * C)  # four adapted layers: x A then (x A) B
    assert forward_flops(merged, idx) == forward_flops(base, idx)
    assert forward_flops(lora, idx) == forward_flops(base, idx) + extra


def test_prompt_tuning_counts_the_longer_sequence_and_qlora_the_same_products():
    base, (idx, _) = load_base().cpu(), _batch()
    prompt = load_base().cpu()
    inject_peer(prompt, "prompt", 8)
    T = idx.shape[1]
    linear, attention = _by_hand(base, T + 8)
    head = 2 * B * 8 * base.config.n_embd * base.config.vocab_size  # lm_head reads only the T real positions
    assert forward_flops(prompt, idx) == linear + attention - head
    q = load_base().cpu()
    quantize_base(q, "nf4")
    inject_lora(q, ["q_proj", "v_proj"], r=4, alpha=8)
    assert step_flops(q, _batch()) == step_flops(_lora(), _batch())  # dequantising is not a matrix product


def test_bad_input_is_refused_with_the_fix():
    base = load_base().cpu()
    with pytest.raises(LoraTypeError, match="torch.nn.Module"):
        step_flops("model", _batch())
    with pytest.raises(LoraTypeError, match="make_batch"):
        step_flops(_lora(), _batch()[0])
    with pytest.raises(LoraTypeError, match="token ids"):
        forward_flops(base, [1, 2, 3])
    for p in base.parameters():
        p.requires_grad_(False)
    with pytest.raises(LoraValueError, match="no trainable parameter"):
        step_flops(base, _batch())
