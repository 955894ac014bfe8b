"""LoRA's peers (lora_mini/peers.py): each starts where it should, trains only its own numbers,
switches off to the base bit for bit, merges where it can, refuses bad input without changing anything,
and counts its trainable parameters as PEFT does on an equivalent OPT model."""
import copy

import pytest
import torch
import torch.nn.functional as F

from lora_mini import count_parameters, inject_lora, load_base, train
from lora_mini.errors import LoraStateError, LoraTypeError, LoraValueError
from lora_mini.model import GPTConfig, ToyGPT
from lora_mini.peers import (
    METHODS,
    Adapter,
    BitFitBias,
    IA3Linear,
    PrefixAttention,
    SoftPrompt,
    disable_peers,
    inject_peer,
    merge_peers,
    peer_layers,
    unload_merged,
    unmerge_peers,
    virtual_tokens,
)
from lora_mini.tasks import make_batch

SIZES = {"bitfit": None, "adapters": 4, "prefix": 3, "prompt": 5, "ia3": None}
C, L = 96, 2  # the shipped base: width 96, 2 layers


@pytest.fixture(scope="module")
def base():
    return load_base().cpu().eval()


@pytest.fixture(scope="module")
def batch():
    return make_batch("rotate", 8, torch.Generator().manual_seed(0))


def _injected(method, size=None):
    torch.manual_seed(0)
    model = load_base().cpu()
    inject_peer(model, method, SIZES[method] if size is None else size)
    return model.eval()


def _perturb(model, seed=1):
    """Give every trainable number a random value, as training would (far from its start)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.1 * torch.randn(p.shape, generator=g))


def _base_tensors(model):
    """The frozen numbers of a model with peers, by identity: every parameter that does not train."""
    return [p.detach().clone() for p in model.parameters() if not p.requires_grad]


# --- the base itself ---------------------------------------------------------------------------


def _reference_forward(model, idx):
    """ToyGPT's forward as it was before prompt tuning's hook, written out: the base must not change."""
    T = idx.shape[1]
    x = model.tok_emb(idx) + model.pos_emb(torch.arange(T))
    for block in model.blocks:
        x = x + block.attn(block.ln1(x))
        x = x + block.mlp(block.ln2(x))
    return model.lm_head(model.ln_f(x))


def test_shipped_base_is_bit_identical_to_the_reference_forward(base, batch):
    logits, _ = base(batch[0])
    assert torch.equal(logits, _reference_forward(base, batch[0]))
    assert base.soft_prompt is None
    assert "soft_prompt" not in "".join(base.state_dict())  # the checkpoint's keys are unchanged


# --- starting point ------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["bitfit", "adapters", "ia3"])
def test_starts_exactly_as_the_base(method, base, batch):
    logits, _ = _injected(method)(batch[0])
    assert torch.equal(logits, base(batch[0])[0])


@pytest.mark.parametrize("method", ["prefix", "prompt"])
def test_virtual_tokens_change_the_output_from_the_start(method, base, batch):
    """Prefix and prompt tuning cannot start as the base: attention gives the new positions weight at once."""
    model = _injected(method)
    assert virtual_tokens(model) == SIZES[method]
    assert not torch.allclose(model(batch[0])[0], base(batch[0])[0], atol=1e-3)


# --- switched off: the base, bit for bit -----------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_disabled_is_the_base_bit_for_bit(method, base, batch):
    model = _injected(method)
    _perturb(model)
    on = model(batch[0])[0]
    with disable_peers(model):
        off = model(batch[0])[0]
    assert torch.equal(off, base(batch[0])[0])
    assert not torch.allclose(on, off)
    assert torch.equal(model(batch[0])[0], on)  # back on after the with-block


# --- only the method's own numbers train -----------------------------------------------------------


def _expected_trainable(method, size):
    base = load_base()
    if method == "bitfit":
        return sum(m.bias.numel() for m in base.modules() if isinstance(m, (torch.nn.Linear, torch.nn.LayerNorm))
                   and m.bias is not None)
    if method == "ia3":
        return L * (C + C + 4 * C)  # l_k, l_v, l_ff per layer
    return {"adapters": 2 * L * (2 * size * C + size + C),  # Houlsby: 2 per layer, each 2·m·C + m + C
            "prefix": L * 2 * size * C,  # a key and a value per virtual token per layer
            "prompt": size * C}[method]  # one embedding per virtual token


@pytest.mark.parametrize("method", METHODS)
def test_count_parameters_counts_exactly_the_new_numbers(method):
    torch.manual_seed(0)
    model = load_base().cpu()
    total_before = count_parameters(model).total
    n = inject_peer(model, method, SIZES[method])
    counted = count_parameters(model)
    want = _expected_trainable(method, SIZES[method])
    assert n == counted.trainable == want
    assert counted.total == total_before + want  # new numbers (BitFit's Δb sits beside the frozen b)


@pytest.mark.parametrize("method", METHODS)
def test_training_changes_only_the_method_and_never_the_base(method):
    model = _injected(method)
    frozen = _base_tensors(model)
    new = {id(p): p.detach().clone() for p in model.parameters() if p.requires_grad}
    train(model, "rotate", steps=3, lr=1e-2, batch_size=8, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(frozen, _base_tensors(model)))
    assert all(not torch.equal(p, new[id(p)]) for p in model.parameters() if p.requires_grad)


def test_train_and_eval_do_not_change_weights():
    model = _injected("ia3")
    _perturb(model)
    before = copy.deepcopy(model.state_dict())
    model.train()
    model.eval()
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


# --- merging ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["bitfit", "ia3"])
def test_merged_equals_unmerged_and_unmerge_restores(method, base, batch):
    model = _injected(method)
    _perturb(model)
    frozen = _base_tensors(model)
    unmerged = model(batch[0])[0]
    merge_peers(model)
    assert all(layer.merged for layer in peer_layers(model).values())
    assert torch.allclose(model(batch[0])[0], unmerged, atol=1e-5)
    unmerge_peers(model)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(frozen, _base_tensors(model)))
    assert torch.allclose(model(batch[0])[0], unmerged, atol=1e-5)


@pytest.mark.parametrize("method", ["bitfit", "ia3", "lora"])
def test_unloaded_model_is_the_base_architecture_with_the_same_outputs(method, base, batch):
    if method == "lora":
        model = load_base().cpu().eval()
        inject_lora(model, ["q_proj", "v_proj"], r=2, alpha=4)
        _perturb(model)
        from lora_mini import merge_lora as merge
    else:
        model, merge = _injected(method), merge_peers
        _perturb(model)
    out = model(batch[0])[0]
    merge(model)
    assert unload_merged(model) > 0
    assert repr(model) == repr(base) and not peer_layers(model)
    assert torch.allclose(model(batch[0])[0], out, atol=1e-5)


def test_unload_leaves_unmerged_layers_alone():
    model = _injected("adapters")
    structure = repr(model)
    assert unload_merged(model) == 0 and repr(model) == structure


def test_merged_ia3_weights_are_the_scaled_weights():
    """l ⊙ (W x + b) = (diag(l) W) x + l ⊙ b on k and v; W (l ⊙ h) = (W diag(l)) h on fc2."""
    model = _injected("ia3")
    _perturb(model)
    k, fc2 = model.blocks[0].attn.k_proj, model.blocks[0].mlp.fc2
    assert isinstance(k, IA3Linear) and isinstance(fc2, IA3Linear) and fc2.is_feedforward
    want_k, want_b = k.ia3_l[:, None] * k.base.weight, k.ia3_l * k.base.bias
    want_fc2 = fc2.base.weight * fc2.ia3_l[None, :]
    merge_peers(model)
    assert torch.allclose(k.base.weight, want_k) and torch.allclose(k.base.bias, want_b)
    assert torch.allclose(fc2.base.weight, want_fc2)


@pytest.mark.parametrize("method", ["adapters", "prefix", "prompt"])
def test_unmergeable_methods_refuse_and_change_nothing(method, batch):
    model = _injected(method)
    _perturb(model)
    before = copy.deepcopy(model.state_dict())
    out = model(batch[0])[0]
    with pytest.raises(LoraStateError, match="cannot be merged"):
        merge_peers(model)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert not any(layer.merged for layer in peer_layers(model).values())
    assert torch.equal(model(batch[0])[0], out)


def test_ia3_with_a_zero_scale_refuses_to_merge_and_changes_nothing():
    model = _injected("ia3")
    layers = [m for m in peer_layers(model).values() if isinstance(m, IA3Linear)]
    with torch.no_grad():
        layers[-1].ia3_l[0] = 0.0  # the last layer: the check must run before the first one merges
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(LoraStateError, match="zero"):
        merge_peers(model)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert not any(layer.merged for layer in layers)


def test_disable_after_merge_is_refused():
    model = _injected("bitfit")
    merge_peers(model)
    with pytest.raises(LoraStateError, match="unmerge_peers"):
        with disable_peers(model):
            pass


# --- each layer does what its paper says -------------------------------------------------------------


def test_prefix_attention_equals_attention_written_out():
    """Every query attends to the P prefix keys and to the input keys up to itself, nothing else."""
    model = _injected("prefix", size=3)
    _perturb(model)
    layer = model.blocks[0].attn
    assert isinstance(layer, PrefixAttention)
    a, x = layer.base, torch.randn(2, 5, C, generator=torch.Generator().manual_seed(0))
    B, T, P, H, D = 2, 5, 3, a.n_head, C // a.n_head
    q = a.q_proj(x).view(B, T, H, D)
    k = torch.cat([layer.prefix_key.expand(B, P, C), a.k_proj(x)], 1).view(B, P + T, H, D)
    v = torch.cat([layer.prefix_value.expand(B, P, C), a.v_proj(x)], 1).view(B, P + T, H, D)
    scores = torch.einsum("bthd,bshd->bhts", q, k) / D**0.5  # (B, H, T, P + T)
    for t in range(T):
        scores[:, :, t, P + t + 1:] = float("-inf")  # input keys after t are hidden
    y = torch.einsum("bhts,bshd->bthd", scores.softmax(-1), v).reshape(B, T, C)
    assert torch.allclose(layer(x), a.o_proj(y), atol=1e-5)


def test_soft_prompt_is_prepended_and_leaves_the_positions_alone(base):
    """Prompt tuning on a full-length input: the base's block_size (17) is not used up by the P vectors."""
    model = _injected("prompt", size=32)
    prompt = model.soft_prompt
    assert isinstance(prompt, SoftPrompt)
    idx = torch.randint(0, 10, (2, model.config.block_size))
    logits, _ = model(idx)
    assert logits.shape == (2, model.config.block_size, model.config.vocab_size)
    x = base.tok_emb(idx) + base.pos_emb(torch.arange(idx.shape[1]))
    assert torch.equal(prompt(x)[:, :32], prompt.embedding.expand(2, -1, -1))
    assert torch.equal(prompt(x)[:, 32:], x)


def test_adapters_sit_after_attention_and_after_the_mlp():
    model = _injected("adapters")
    adapters = [m for m in model.modules() if isinstance(m, Adapter)]
    assert len(adapters) == 2 * L
    assert all(isinstance(b.attn.o_proj, Adapter) and isinstance(b.mlp.fc2, Adapter) for b in model.blocks)
    assert all(torch.equal(m.adapter_up.weight, torch.zeros(C, 4)) for m in adapters)


def test_bitfit_wraps_every_bias_and_nothing_else():
    model = _injected("bitfit")
    wrapped = [m.base for m in model.modules() if isinstance(m, BitFitBias)]
    assert len(wrapped) == L * 6 + L * 2 + 1  # q, k, v, o, fc1, fc2; ln1, ln2; ln_f (lm_head has no bias)
    assert all(isinstance(m, (torch.nn.Linear, torch.nn.LayerNorm)) for m in wrapped)


# --- bad input: a clear error, nothing changed ------------------------------------------------------


@pytest.mark.parametrize(
    "method, size, error, words",
    [
        ("lora", None, LoraValueError, "method must be one of"),
        ("adapters", 0, LoraValueError, "bottleneck"),
        ("prefix", -2, LoraValueError, "num_virtual_tokens"),
        ("prompt", 2.0, LoraValueError, "positive integer"),
        ("prompt", True, LoraValueError, "positive integer"),
        ("bitfit", 4, LoraValueError, "no size"),
        ("ia3", 8, LoraValueError, "size=None"),
    ],
)
def test_bad_arguments_raise_and_change_nothing(method, size, error, words):
    model = load_base().cpu()
    before, structure = copy.deepcopy(model.state_dict()), repr(model)
    with pytest.raises(error, match=words):
        inject_peer(model, method, size)
    assert repr(model) == structure and model.soft_prompt is None
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert all(p.requires_grad for p in model.parameters())


def test_not_a_toygpt_and_a_bad_seed_are_type_errors():
    with pytest.raises(LoraTypeError, match="ToyGPT"):
        inject_peer(torch.nn.Linear(4, 4), "ia3")
    model = load_base().cpu()
    structure = repr(model)
    with pytest.raises(LoraTypeError, match="seed"):
        inject_peer(model, "prompt", 4, seed="0")
    assert repr(model) == structure and model.soft_prompt is None


@pytest.mark.parametrize("first", ["prompt", "ia3", "lora"])
def test_a_second_method_is_refused_and_changes_nothing(first):
    model = load_base().cpu()
    if first == "lora":
        inject_lora(model, ["q_proj", "v_proj"], r=2, alpha=4)
    else:
        inject_peer(model, first, SIZES[first])
    before, structure = copy.deepcopy(model.state_dict()), repr(model)
    grads = [p.requires_grad for p in model.parameters()]
    with pytest.raises(LoraStateError, match="fresh base"):
        inject_peer(model, "adapters", 2)
    assert repr(model) == structure
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert grads == [p.requires_grad for p in model.parameters()]


def test_merge_without_peers_is_refused():
    with pytest.raises(LoraStateError, match="inject_peer"):
        merge_peers(load_base().cpu())


# --- parity with PEFT on an equivalent OPT model ----------------------------------------------------


@pytest.fixture(scope="module")
def opt_config():
    transformers = pytest.importorskip("transformers")
    cfg = GPTConfig()
    return transformers.OPTConfig(
        vocab_size=cfg.vocab_size, hidden_size=cfg.n_embd, num_attention_heads=cfg.n_head,
        num_hidden_layers=cfg.n_layer, ffn_dim=4 * cfg.n_embd, max_position_embeddings=cfg.block_size,
        word_embed_proj_dim=cfg.n_embd, do_layer_norm_before=True, dropout=0.0, attention_dropout=0.0,
    )


def _peft_trainable(opt_config, peft_config):
    from transformers import OPTForCausalLM
    from peft import get_peft_model

    torch.manual_seed(0)
    return get_peft_model(OPTForCausalLM(opt_config), peft_config).get_nb_trainable_parameters()[0]


@pytest.mark.parametrize("p", [1, 8])
def test_prefix_tuning_count_matches_peft(opt_config, p):
    """PEFT's default prefix_projection=False stores the prefix directly: P · layers · 2 · C, as here.
    (With prefix_projection=True PEFT trains an MLP that makes the prefix, Li & Liang's reparametrisation.)"""
    from peft import PrefixTuningConfig

    ours = inject_peer(ToyGPT(GPTConfig()), "prefix", p)
    assert ours == _peft_trainable(opt_config, PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=p))


@pytest.mark.parametrize("p", [1, 8])
def test_prompt_tuning_count_matches_peft(opt_config, p):
    from peft import PromptTuningConfig

    ours = inject_peer(ToyGPT(GPTConfig()), "prompt", p)
    assert ours == _peft_trainable(opt_config, PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=p))


def test_ia3_count_matches_peft(opt_config):
    """As the paper: keys, values and the MLP's hidden (fc2's input). PEFT's own default for OPT is
    q_proj, k_proj and fc2, which has the same count on this model (q and v are both C → C)."""
    from peft import IA3Config

    ours = inject_peer(ToyGPT(GPTConfig()), "ia3")
    cfg = IA3Config(task_type="CAUSAL_LM", target_modules=["k_proj", "v_proj", "fc2"], feedforward_modules=["fc2"])
    assert ours == _peft_trainable(opt_config, cfg)
    assert ours == _peft_trainable(opt_config, IA3Config(task_type="CAUSAL_LM"))


# --- notebook 09's quiz ------------------------------------------------------------------------------


def test_quiz_09_is_valid_and_its_number_is_lora_minis():
    """The quiz follows the bank's rules; its numeric answer is recomputed here (tests/test_quiz.py's CHECKS
    style: "prefix_tokens_for_3072")."""
    from lora_mini.quiz import grade, load_questions, validate_questions

    questions = load_questions("09_lora_among_peers")
    assert validate_questions(questions) == [] and len(questions) >= 6
    assert {"multiple_choice", "many_choice", "numeric"} <= {q["type"] for q in questions}
    numeric = [q for q in questions if q["type"] == "numeric"]
    assert [q["check"] for q in numeric] == ["prefix_tokens_for_3072"]
    per_token = inject_peer(load_base().cpu(), "prefix", 1)  # one key and one value per block
    tokens = 3072 // per_token
    assert inject_peer(load_base().cpu(), "prefix", tokens) == 3072
    assert grade(numeric[0], tokens).correct
    assert not any(grade(numeric[0], a["value"]).correct for a in numeric[0]["answers"]
                   if a["type"] == "value" and not a["correct"])
