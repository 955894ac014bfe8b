"""lora_mini.hf: the toy base as a transformers OPTForCausalLM, and PEFT training that matches lora_mini."""
import copy

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("transformers")  # a course requirement (requirements.txt); never skipped in the course env
from peft import LoraConfig, get_peft_model  # noqa: E402
from transformers import OPTConfig, OPTForCausalLM  # noqa: E402

from lora_mini import (  # noqa: E402
    LoraStateError,
    LoraTypeError,
    LoraValueError,
    complete,
    count_parameters,
    evaluate,
    inject_lora,
    load_base,
    make_batch,
    merge_lora,
    quantize_base,
    train,
)
from lora_mini.hf import from_transformers, hf_complete, to_transformers  # noqa: E402
from lora_mini.tasks import TASK_TOKEN  # noqa: E402

ALL_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "fc1", "fc2"]


def _state_equal(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


def _adapted(seed: int = 0, dora: bool = False):
    """The base with adapters on every Linear, B random (so ΔW is not zero), merged."""
    torch.manual_seed(seed)
    model = load_base().cpu()
    inject_lora(model, ALL_TARGETS, r=4, alpha=8, use_dora=dora)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("lora_B"):
                p.normal_(0, 0.05)
    merge_lora(model)
    return model.eval()


def _max_logit_diff(toy, hf, dtype=torch.float32) -> tuple[float, float]:
    """Largest |logit difference| and largest |logit| over random inputs of every length 1..block_size."""
    g = torch.Generator().manual_seed(1)
    toy, hf = toy.to(dtype), hf.to(dtype)
    worst, biggest = 0.0, 0.0
    with torch.no_grad():
        for T in range(1, toy.config.block_size + 1):
            x = torch.randint(0, toy.config.vocab_size, (16, T), generator=g)
            a, b = hf(input_ids=x).logits, toy(x)[0]
            worst = max(worst, (a - b).abs().max().item())
            biggest = max(biggest, b.abs().max().item())
    return worst, biggest


@pytest.mark.parametrize("kind", ["base", "merged LoRA", "merged DoRA"])
def test_logits_equal_at_every_length(kind):
    toy = load_base().cpu() if kind == "base" else _adapted(dora=kind == "merged DoRA")
    hf = to_transformers(toy)
    assert isinstance(hf, OPTForCausalLM) and not hf.training
    worst, biggest = _max_logit_diff(copy.deepcopy(toy), copy.deepcopy(hf), torch.float64)
    assert worst < 1e-10 * biggest  # in float64: the same function
    worst, biggest = _max_logit_diff(toy, hf)
    assert worst < 1e-5 * biggest  # in float32, rounding only (OPT scales q before the product, SDPA inside)


def test_a_changed_weight_changes_the_logits():
    """The comparison above could fail: one number of the OPT model moved and the logits differ."""
    toy = load_base().cpu()
    hf = to_transformers(toy)
    with torch.no_grad():
        hf.model.decoder.layers[1].fc2.bias[3] += 0.1
    x = torch.randint(0, 18, (4, 17), generator=torch.Generator().manual_seed(0))
    assert (hf(input_ids=x).logits - toy(x)[0]).abs().max() > 1e-3


def test_config_matches_the_toy():
    toy = load_base().cpu()
    c = to_transformers(toy).config
    assert (c.hidden_size, c.num_hidden_layers, c.num_attention_heads) == (96, 2, 4)
    assert (c.ffn_dim, c.vocab_size, c.max_position_embeddings) == (384, 18, 17)
    assert c.activation_function == "gelu" and c.do_layer_norm_before and not c.tie_word_embeddings
    assert c.pad_token_id is None and c.bos_token_id is None and c.eos_token_id is None


def test_round_trip_is_bit_identical():
    toy = load_base().cpu()
    hf = to_transformers(toy)
    back = from_transformers(hf)
    assert _state_equal(toy, back) and back.config == toy.config
    assert hf.model.decoder.embed_positions.weight[:2].abs().sum() == 0  # the two offset rows are never read
    merged = _adapted()
    plain = from_transformers(to_transformers(merged))
    for name, p in plain.state_dict().items():  # the merged W + ΔW, without the adapters
        key = name.replace(".weight", ".base.weight").replace(".bias", ".base.bias")
        src = merged.state_dict().get(key, merged.state_dict().get(name))
        assert torch.equal(p, src), name


def test_conversion_copies_rather_than_shares():
    toy = load_base().cpu()
    hf = to_transformers(toy)
    with torch.no_grad():
        hf.lm_head.weight.zero_()
    assert toy.lm_head.weight.abs().sum() > 0
    back = from_transformers(hf)
    with torch.no_grad():
        back.tok_emb.weight.zero_()
    assert hf.model.decoder.embed_tokens.weight.abs().sum() > 0


def test_save_pretrained_from_pretrained(tmp_path):
    hf = to_transformers(_adapted())
    hf.save_pretrained(tmp_path)
    assert (tmp_path / "config.json").is_file() and (tmp_path / "model.safetensors").is_file()
    again = OPTForCausalLM.from_pretrained(tmp_path).eval()
    assert _state_equal(hf, again)
    x = torch.randint(0, 18, (8, 17), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.equal(hf(input_ids=x).logits, again(input_ids=x).logits)


@pytest.mark.parametrize("kind", ["base", "merged LoRA"])
def test_generate_equals_complete(kind):
    toy = load_base().cpu() if kind == "base" else _adapted(seed=3)
    hf = to_transformers(toy)
    g = torch.Generator().manual_seed(4)
    for task in TASK_TOKEN:
        digits = torch.randint(0, 10, (8,), generator=g).tolist()
        assert hf_complete(hf, task, digits) == complete(toy, task, digits), (task, digits)


def test_refuses_unmerged_adapters_and_changes_nothing():
    toy = load_base().cpu()
    inject_lora(toy, ["q_proj", "v_proj"], r=4, alpha=8)
    before = copy.deepcopy(toy.state_dict())
    with pytest.raises(LoraStateError, match="merge_lora"):
        to_transformers(toy)
    assert all(torch.equal(before[k], v) for k, v in toy.state_dict().items())
    assert not any(getattr(m, "merged", False) for m in toy.modules())


def test_refuses_what_it_cannot_convert():
    with pytest.raises(LoraTypeError, match="ToyGPT"):
        to_transformers(torch.nn.Linear(3, 3))
    quant = load_base().cpu()
    quantize_base(quant, "nf4")
    with pytest.raises(LoraTypeError, match="quantize_base"):
        to_transformers(quant)
    relu = OPTForCausalLM(OPTConfig(vocab_size=18, hidden_size=96, num_hidden_layers=2, num_attention_heads=4,
                                    ffn_dim=384, max_position_embeddings=17, activation_function="relu",
                                    dropout=0.0, tie_word_embeddings=False))
    before = copy.deepcopy(relu.state_dict())
    with pytest.raises(LoraValueError, match="activation_function"):
        from_transformers(relu)
    assert all(torch.equal(before[k], v) for k, v in relu.state_dict().items())
    with pytest.raises(LoraTypeError, match="OPTForCausalLM"):
        from_transformers(load_base())
    peft_model = get_peft_model(to_transformers(load_base().cpu()), LoraConfig(r=2, target_modules=["q_proj"]))
    with pytest.raises(LoraStateError, match="merge_and_unload"):
        from_transformers(peft_model)


# ---------------------------------------------------------------------------
# PEFT training on the OPT equals lora_mini training on the toy
# ---------------------------------------------------------------------------


def _lora_a(toy) -> dict[str, torch.Tensor]:
    return {n: m.lora_A.detach().clone() for n, m in toy.named_modules() if hasattr(m, "lora_A")}


def _copy_a_into_peft(peft_model, a_by_toy_name: dict[str, torch.Tensor]) -> int:
    """Give PEFT's lora_A the toy's initial A (both are Kaiming-uniform, from different random draws)."""
    copied = 0
    with torch.no_grad():
        for name, module in peft_model.named_modules():
            if isinstance(getattr(module, "lora_A", None), torch.nn.ModuleDict):
                layer = name.split("layers.")[1].split(".")[0]
                proj = {"out_proj": "o_proj"}.get(name.rsplit(".", 1)[1], name.rsplit(".", 1)[1])
                module.lora_A["default"].weight.copy_(a_by_toy_name[f"blocks.{layer}.attn.{proj}"])
                copied += 1
    return copied


def _peft_train(peft_model, task: str, steps: int, lr: float, batch_size: int, seed: int) -> list[float]:
    """The plain PyTorch loop a learner writes for PEFT: lora_mini.train's batches, loss and AdamW."""
    opt = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
    g = torch.Generator().manual_seed(seed)
    peft_model.train()
    losses = []
    for _ in range(steps):
        idx, targets = make_batch(task, batch_size, g)
        logits = peft_model(input_ids=idx).logits  # (B, T, vocab)
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("embeddings", [False, True], ids=["lora", "lora+modules_to_save"])
def test_peft_training_matches_lora_mini(embeddings):
    task, steps, lr = "rotate", 40, 1e-2
    torch.manual_seed(0)
    toy = load_base().cpu()
    inject_lora(toy, ["q_proj", "v_proj"], r=4, alpha=8)
    toy.tok_emb.weight.requires_grad_(embeddings)  # the new task token's row can then learn
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], lora_dropout=0.0,
                        modules_to_save=["embed_tokens"] if embeddings else None)
    peft_model = get_peft_model(to_transformers(load_base().cpu()), config)
    assert _copy_a_into_peft(peft_model, _lora_a(toy)) == 4
    trainable, _ = peft_model.get_nb_trainable_parameters()
    assert trainable == count_parameters(toy).trainable
    ours = train(toy, task, steps=steps, lr=lr, batch_size=64, seed=0, progress=False).loss
    theirs = _peft_train(peft_model, task, steps, lr, 64, seed=0)
    assert ours[0] == pytest.approx(theirs[0], abs=1e-5)  # step 0: the same model
    assert max(abs(a - b) for a, b in zip(ours, theirs)) < 1e-3 * max(ours)
    assert ours[-1] < 0.5 * ours[0]  # and both did learn
    merged = from_transformers(peft_model.merge_and_unload())
    merge_lora(toy)
    assert evaluate(merged, task) == evaluate(toy.eval(), task)
    diff = (merged(make_batch(task, 8, torch.Generator().manual_seed(5))[0])[0]).sub(
        toy(make_batch(task, 8, torch.Generator().manual_seed(5))[0])[0]).abs().max()
    # 40 Adam steps at lr 1e-2 let the two runs' weights drift apart by float rounding (thread-count dependent:
    # 0.021 of logits up to ~17 on one thread); a wrong merge is off by whole units.
    assert diff < 0.1


def test_different_batches_give_a_different_curve():
    """The equality above could fail: PEFT on other batches (seed 1) departs from lora_mini's curve."""
    torch.manual_seed(0)
    toy = load_base().cpu()
    inject_lora(toy, ["q_proj", "v_proj"], r=4, alpha=8)
    peft_model = get_peft_model(to_transformers(load_base().cpu()),
                                LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    _copy_a_into_peft(peft_model, _lora_a(toy))
    ours = train(toy, "rotate", steps=10, lr=1e-2, batch_size=64, seed=0, progress=False).loss
    theirs = _peft_train(peft_model, "rotate", 10, 1e-2, 64, seed=1)
    assert max(abs(a - b) for a, b in zip(ours, theirs)) > 1e-2


def test_adapter_folders_cross_between_toy_and_opt_names(tmp_path):
    from peft import PeftModel

    from lora_mini import AdapterFileError, export_peft, import_peft
    from lora_mini.hf import convert_adapter, hf_exact_match

    torch.manual_seed(0)
    toy = load_base().cpu()
    inject_lora(toy, ["q_proj", "v_proj"], r=4, alpha=8)
    train(toy, "rotate", steps=30, lr=1e-2, progress=False)
    toy.eval()
    export_peft(toy, tmp_path / "toy")
    convert_adapter(tmp_path / "toy", tmp_path / "opt", to="opt")
    peft_model = PeftModel.from_pretrained(to_transformers(load_base().cpu()), tmp_path / "opt").eval()
    x = make_batch("rotate", 16, torch.Generator().manual_seed(1))[0]
    with torch.no_grad():
        assert (peft_model(input_ids=x).logits - toy(x)[0]).abs().max() < 1e-4
    assert hf_exact_match(peft_model, "rotate") == evaluate(toy, "rotate")["rotate"]
    peft_model.save_pretrained(tmp_path / "peft")
    convert_adapter(tmp_path / "peft", tmp_path / "back", to="toy")
    back = load_base().cpu()
    assert import_peft(back, tmp_path / "back") == [f"blocks.{i}.attn.{t}" for i in range(2) for t in ("q_proj", "v_proj")]
    with torch.no_grad():
        assert torch.equal(back.eval()(x)[0], toy(x)[0])  # the same tensors, bit for bit
    with pytest.raises(AdapterFileError, match="save_pretrained"):
        convert_adapter(tmp_path / "nothing", tmp_path / "x", to="opt")
    with pytest.raises(LoraValueError, match="'opt' or 'toy'"):
        convert_adapter(tmp_path / "toy", tmp_path / "x", to="gpt2")
