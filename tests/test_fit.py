"""lora_mini.fit: real architectures on the meta device, PEFT's counts, and the memory estimate vs its anchors."""
import pytest
import torch

from lora_mini import LoraValueError, account_training_step, inject_lora, load_base, make_batch
from lora_mini.fit import (
    GB,
    GPUS_GIB,
    MODELS,
    TARGET_CHOICES,
    Setup,
    Shape,
    activation_elements,
    closed_form_trainable,
    estimate,
    meta_model,
    param_counts,
    peft_trainable,
    shape,
)

LISTED = ["GPT-2 small", "Qwen2.5-0.5B", "Mistral-7B", "Llama-3-8B"]


def test_the_listed_architectures_are_there():
    assert set(LISTED) <= set(MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_meta_model_takes_no_memory_and_has_the_config_shapes(name):
    model = meta_model(name)
    assert all(p.device.type == "meta" for p in model.parameters())
    s = shape(name)
    assert model.get_input_embeddings().weight.shape == (s.vocab, s.hidden)
    total, linear = param_counts(name)
    per_block = sum(i * o for i, o in s.linears().values())  # the Linear weights, from the config alone
    assert linear == s.layers * per_block
    assert total > linear + s.vocab * s.hidden - 1  # plus embeddings (tied or not), norms, biases


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("targets", TARGET_CHOICES)
def test_peft_counts_equal_the_closed_form(name, targets):
    for r in (1, 8):
        assert peft_trainable(name, r, targets) == closed_form_trainable(name, r, targets)
    assert closed_form_trainable(name, 8, targets) == 8 * closed_form_trainable(name, 1, targets)


def test_closed_form_of_gpt3_q_v_matches_the_lora_paper_shape():
    """LoRA paper: r = 4 on W_q and W_v of GPT-3 175B; our GPT-2-shaped GPT-3 fuses q, k, v (c_attn)."""
    s = shape("GPT-3 175B")
    assert (s.hidden, s.layers) == (12288, 96)
    assert closed_form_trainable("GPT-3 175B", 4, "q, v") == 96 * 4 * (12288 + 3 * 12288)


def test_activation_count_matches_the_toy_measured():
    """The per-token count of fit, on the toy's shape, against the tensors autograd really kept."""
    batch = make_batch("rotate", 64, torch.Generator().manual_seed(0))
    tokens = batch[0].numel()
    toy = Shape("gpt2", hidden=96, intermediate=384, layers=2, heads=4, kv_heads=4, vocab=18)
    full_model = load_base().cpu().train()
    lora_model = load_base().cpu().train()
    inject_lora(lora_model, ["q_proj", "v_proj"], r=4, alpha=8)
    for model, trains, r, head in [(full_model, set(toy.linears()), 0, True), (lora_model, {"c_attn"}, 4, False)]:
        per, after = activation_elements(toy, trains, r, head_trains=head)
        if r:
            per += r  # the toy has q and v as two Linears, both LoRA-adapted; fit's GPT-2 shape fuses them
        predicted = tokens * (toy.layers * per + after) * 4 + tokens * toy.vocab * 4
        measured = account_training_step(model, batch).activations
        assert 0.9 < predicted / measured < 1.1, (r, predicted, measured)


def test_lora_paper_anchor_gpt3():
    """Hu et al. 2021 (LoRA), Section 4.2: GPT-3 175B training VRAM 1.2TB -> 350GB with r = 4 on q, v."""
    run = dict(precision="bf16", batch=1, seq=2048, checkpointing=True)
    full = estimate("GPT-3 175B", Setup("full", **run))
    lora = estimate("GPT-3 175B", Setup("lora", r=4, targets="q, v", **run))
    assert 0.95 < lora.total / (350 * GB) < 1.05
    assert full.total >= 1.2e12  # our full fine-tuning keeps fp32 Adam moments: more than the paper's 1.2 TB
    assert full.total / lora.total >= 3  # the abstract's "GPU memory requirement by 3 times"


def test_qlora_paper_anchor_llama65b():
    """Dettmers et al. 2023 (QLoRA): finetuning 65B from >780GB to <48GB (r = 64 on all linear layers)."""
    run = dict(batch=1, seq=512, checkpointing=True)
    full = estimate("LLaMA-65B", Setup("full", precision="bf16", **run))
    qlora = estimate("LLaMA-65B", Setup("qlora", r=64, targets="all linear", **run))
    assert full.total > 780 * GB
    assert qlora.total < 48 * GB
    lora16 = estimate("LLaMA-65B", Setup("lora", r=64, targets="all linear", precision="bf16", **run))
    assert lora16.total > 48 * GB  # without the 4-bit base it does not fit: the quantisation is what does it


def test_the_estimate_responds_to_every_setting():
    base = Setup("lora", r=16, targets="q, v", precision="bf16", batch=2, seq=512, checkpointing=False)
    e = estimate("Llama-3-8B", base)
    assert estimate("Llama-3-8B", Setup(**{**base.__dict__, "r": 64})).total > e.total
    assert estimate("Llama-3-8B", Setup(**{**base.__dict__, "targets": "all linear"})).total > e.total
    assert estimate("Llama-3-8B", Setup(**{**base.__dict__, "precision": "fp32"})).total > e.total
    assert estimate("Llama-3-8B", Setup(**{**base.__dict__, "batch": 4})).activations > e.activations
    assert estimate("Llama-3-8B", Setup(**{**base.__dict__, "seq": 1024})).activations > e.activations
    assert estimate("Llama-3-8B", Setup(**{**base.__dict__, "checkpointing": True})).activations < e.activations
    assert estimate("Llama-3-8B", Setup(**{**base.__dict__, "method": "qlora"})).weights < e.weights / 2
    full = estimate("Llama-3-8B", Setup(**{**base.__dict__, "method": "full"}))
    assert full.optimizer == 8 * param_counts("Llama-3-8B")[0] and full.total > e.total


def test_fits_lists_the_gpus_that_hold_it():
    small = estimate("GPT-2 small", Setup("lora", batch=1, seq=128))
    assert small.fits() == list(GPUS_GIB)
    huge = estimate("Llama-3-8B", Setup("full", precision="fp32", batch=8, seq=4096))
    assert huge.fits() == []
    mid = estimate("Llama-3-8B", Setup("lora", batch=1, seq=512))
    assert mid.fits() == [g for g in GPUS_GIB if g * 2**30 >= mid.total] and mid.fits()[0] in (24, 40)


@pytest.mark.parametrize("bad", [dict(method="prefix"), dict(precision="fp8"), dict(r=0), dict(r=2.5),
                                 dict(targets="everything"), dict(batch=0), dict(seq=True)])
def test_bad_settings_raise(bad):
    with pytest.raises(LoraValueError, match=next(iter(bad))):
        Setup(**bad)


def test_unknown_model_raises():
    with pytest.raises(LoraValueError, match="model must be one of"):
        estimate("GPT-5", Setup())
