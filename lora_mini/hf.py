"""The toy base as a real Hugging Face model: ToyGPT <-> ``transformers.OPTForCausalLM``, exactly.

ToyGPT is the OPT architecture in miniature: pre-LayerNorm blocks, learned positions, GELU,
separate q/k/v/out projections with biases, fc1/fc2, a final LayerNorm and an untied LM head.
So the shipped base can *become* a stock transformers model, built offline from a config:

    hf = to_transformers(load_base())        # an OPTForCausalLM, same logits (float rounding aside)
    hf.save_pretrained("toy-opt")            # config.json + model.safetensors, like any model on the Hub
    toy = from_transformers(hf)              # back to ToyGPT, bit for bit

The parameter names, one to one (i = block index):

    ToyGPT                      OPTForCausalLM
    tok_emb                     model.decoder.embed_tokens
    pos_emb  (T, C)             model.decoder.embed_positions  (T + 2, C): OPT reads row position + 2
    blocks.i.ln1                model.decoder.layers.i.self_attn_layer_norm
    blocks.i.attn.{q,k,v}_proj  model.decoder.layers.i.self_attn.{q,k,v}_proj
    blocks.i.attn.o_proj        model.decoder.layers.i.self_attn.out_proj
    blocks.i.ln2                model.decoder.layers.i.final_layer_norm
    blocks.i.mlp.fc1 / fc2      model.decoder.layers.i.fc1 / fc2
    ln_f                        model.decoder.final_layer_norm
    lm_head                     lm_head  (untied: tie_word_embeddings=False)

The toy's vocabulary has no pad, bos or eos token (ids 0-9 digits, 10 "=", 11-17 task tokens), so the
config sets all three to None: an OPT pad id would also zero that token's embedding gradient.
"""
from __future__ import annotations

import torch

from .errors import AdapterFileError, LoraStateError, LoraTypeError, LoraValueError
from .lora import LoRALinear
from .model import GPTConfig, ToyGPT
from .quant import QuantLinear
from .tasks import N_DIGITS, SEP, SEQ_LEN, TASK_TOKEN, check_task

POSITION_OFFSET = 2  # OPTLearnedPositionalEmbedding looks up row position + 2 (a fairseq legacy)
TOY_TO_OPT = {  # per block: ToyGPT module -> OPT module
    "ln1": "self_attn_layer_norm",
    "attn.q_proj": "self_attn.q_proj",
    "attn.k_proj": "self_attn.k_proj",
    "attn.v_proj": "self_attn.v_proj",
    "attn.o_proj": "self_attn.out_proj",
    "ln2": "final_layer_norm",
    "mlp.fc1": "fc1",
    "mlp.fc2": "fc2",
}


def opt_config(config: GPTConfig):
    """The ``transformers.OPTConfig`` of a ToyGPT with this GPTConfig."""
    from transformers import OPTConfig

    return OPTConfig(
        vocab_size=config.vocab_size,
        hidden_size=config.n_embd,
        num_hidden_layers=config.n_layer,
        num_attention_heads=config.n_head,
        ffn_dim=4 * config.n_embd,
        max_position_embeddings=config.block_size,
        do_layer_norm_before=True,  # pre-LayerNorm, as ToyGPT's Block
        word_embed_proj_dim=config.n_embd,  # no project_in / project_out
        activation_function="gelu",  # exact (erf) GELU, as F.gelu
        dropout=config.dropout,
        attention_dropout=config.dropout,
        layerdrop=0.0,
        enable_bias=True,
        layer_norm_elementwise_affine=True,
        tie_word_embeddings=False,  # ToyGPT's lm_head is its own matrix
        pad_token_id=None,  # the toy vocabulary has no pad, bos or eos token
        bos_token_id=None,
        eos_token_id=None,
        use_cache=True,
    )


def _plain_state(model: ToyGPT) -> dict[str, torch.Tensor]:
    """ToyGPT's state dict with merged LoRA layers read as the plain Linear they now are."""
    state = {}
    for name, tensor in model.state_dict().items():
        parts = name.split(".")
        if any(p in ("lora_A", "lora_B", "lora_magnitude_vector") for p in parts):
            continue
        state[name.replace(".base.", ".")] = tensor  # "blocks.0.attn.q_proj.base.weight" -> "...q_proj.weight"
    return state


def _check_toy(model: object) -> None:
    if not isinstance(model, ToyGPT):
        raise LoraTypeError(f"to_transformers converts a ToyGPT (e.g. load_base()), got {type(model).__name__}")
    for name, module in model.named_modules():
        if isinstance(module, QuantLinear) or (isinstance(module, LoRALinear) and isinstance(module.base, QuantLinear)):
            raise LoraTypeError(
                f"{name} is a quantised QuantLinear, which OPT has no slot for; convert a float base "
                "(load_base() without quantize_base)"
            )
    unmerged = [n for n, m in model.named_modules() if isinstance(m, LoRALinear) and not m.merged]
    if unmerged:
        raise LoraStateError(
            f"to_transformers needs merged adapters, but {unmerged[0]} (and {len(unmerged) - 1} more) are unmerged; "
            "call merge_lora(model) first, or export the adapter alone with export_peft(model, directory)"
        )


def to_transformers(model: ToyGPT):
    """``model`` (a base, or one with merged adapters) as a ``transformers.OPTForCausalLM`` with equal logits.

    Returned on the CPU in eval mode. ``model`` itself is not changed. Unmerged adapters and
    quantised layers are refused (LoraStateError / LoraTypeError) before anything is built.
    """
    from transformers import OPTForCausalLM

    _check_toy(model)
    config = opt_config(model.config)
    state = {k: v.detach().cpu() for k, v in _plain_state(model).items()}
    C = model.config.n_embd
    positions = torch.cat([torch.zeros(POSITION_OFFSET, C, dtype=state["pos_emb.weight"].dtype),
                           state["pos_emb.weight"]])  # (T + 2, C): rows 0 and 1 are never read
    hf_state = {
        "model.decoder.embed_tokens.weight": state["tok_emb.weight"],
        "model.decoder.embed_positions.weight": positions,
        "model.decoder.final_layer_norm.weight": state["ln_f.weight"],
        "model.decoder.final_layer_norm.bias": state["ln_f.bias"],
        "lm_head.weight": state["lm_head.weight"],
    }
    for i in range(model.config.n_layer):
        for toy, opt in TOY_TO_OPT.items():
            for p in ("weight", "bias"):
                hf_state[f"model.decoder.layers.{i}.{opt}.{p}"] = state[f"blocks.{i}.{toy}.{p}"]
    with torch.device("meta"):  # no random init: every tensor comes from the toy
        hf = OPTForCausalLM(config)
    hf.load_state_dict({k: v.clone() for k, v in hf_state.items()}, strict=True, assign=True)
    hf.generation_config.pad_token_id = None
    return hf.eval()


def _check_opt(hf_model: object) -> None:
    from transformers import OPTForCausalLM

    try:
        from peft import PeftModel
    except ImportError:  # without PEFT there can be no PeftModel
        PeftModel = ()
    if isinstance(hf_model, PeftModel):
        raise LoraStateError(
            "from_transformers takes a plain transformers model, got a PEFT model with its adapter still "
            "separate; call model = model.merge_and_unload() first"
        )
    if not isinstance(hf_model, OPTForCausalLM):
        raise LoraTypeError(f"from_transformers converts an OPTForCausalLM (from to_transformers), got "
                            f"{type(hf_model).__name__}")
    lora = [n for n, m in hf_model.named_modules() if hasattr(m, "lora_A") or hasattr(m, "modules_to_save")]
    if lora:
        raise LoraStateError(f"{lora[0]} still holds PEFT layers; call model = model.merge_and_unload() first")
    c = hf_model.config
    want = dict(do_layer_norm_before=True, word_embed_proj_dim=c.hidden_size, activation_function="gelu",
                enable_bias=True, layer_norm_elementwise_affine=True, ffn_dim=4 * c.hidden_size,
                _remove_final_layer_norm=False, dropout=c.attention_dropout, layerdrop=0.0)
    bad = {k: getattr(c, k, None) for k, v in want.items() if getattr(c, k, None) != v}
    if bad:
        raise LoraValueError(
            f"this OPT config has no ToyGPT equivalent: {bad}; ToyGPT needs {want} "
            "(a model made by to_transformers, possibly fine-tuned, has them)"
        )


def from_transformers(hf_model) -> ToyGPT:
    """The ToyGPT equal to ``hf_model``, an OPTForCausalLM of ToyGPT's shape (e.g. PEFT-trained and merged).

    Tensors are copied, so the result shares nothing with ``hf_model``; returned on the CPU in eval mode.
    """
    _check_opt(hf_model)
    c = hf_model.config
    config = GPTConfig(vocab_size=c.vocab_size, block_size=c.max_position_embeddings, n_layer=c.num_hidden_layers,
                       n_head=c.num_attention_heads, n_embd=c.hidden_size, dropout=float(c.dropout))
    hf = {k: v.detach().cpu() for k, v in hf_model.state_dict().items()}
    state = {
        "tok_emb.weight": hf["model.decoder.embed_tokens.weight"],
        "pos_emb.weight": hf["model.decoder.embed_positions.weight"][POSITION_OFFSET:],  # (T, C)
        "ln_f.weight": hf["model.decoder.final_layer_norm.weight"],
        "ln_f.bias": hf["model.decoder.final_layer_norm.bias"],
        "lm_head.weight": hf["lm_head.weight"],
    }
    for i in range(config.n_layer):
        for toy, opt in TOY_TO_OPT.items():
            for p in ("weight", "bias"):
                state[f"blocks.{i}.{toy}.{p}"] = hf[f"model.decoder.layers.{i}.{opt}.{p}"]
    with torch.device("meta"):
        model = ToyGPT(config)
    model.load_state_dict({k: v.clone() for k, v in state.items()}, strict=True, assign=True)
    return model.eval()


def generation_kwargs() -> dict:
    """``generate()`` options that make an OPT of the toy answer as ``lora_mini.complete``: greedy, SEQ_LEN
    new tokens, and only digits allowed (complete takes the argmax over the ten digits)."""
    vocab = max(TASK_TOKEN.values()) + 1
    return dict(max_new_tokens=SEQ_LEN, do_sample=False, suppress_tokens=list(range(N_DIGITS, vocab)),
                pad_token_id=None, eos_token_id=None)


@torch.no_grad()
def hf_complete(hf_model, task: str, digits: list[int]) -> list[int]:
    """The greedy answer of an OPT of the toy to one input, via ``generate()`` (KV cache and all)."""
    check_task(task)
    ids = torch.tensor([[TASK_TOKEN[task], *digits, SEP]])  # (1, SEQ_LEN + 2)
    out = hf_model.generate(ids, attention_mask=torch.ones_like(ids), **generation_kwargs())  # (1, 2 SEQ_LEN + 2)
    return out[0, -SEQ_LEN:].tolist()


@torch.no_grad()
def hf_exact_match(hf_model, task: str, n_examples: int = 512) -> float:
    """``lora_mini.exact_match`` for a transformers (or PEFT) model: the held-out answers all right, in [0, 1]."""
    from .tasks import eval_set

    was_training = hf_model.training
    hf_model.eval()
    idx, targets = eval_set(task, n_examples)
    logits = hf_model(input_ids=idx).logits  # (B, T, vocab)
    scored = targets != -100  # (B, T)
    right = (logits[..., :N_DIGITS].argmax(-1) == targets) | ~scored  # (B, T)
    hf_model.train(was_training)
    return right.all(dim=1).float().mean().item()


# ---------------------------------------------------------------------------
# PEFT adapter folders: toy layer names <-> OPT layer names
# ---------------------------------------------------------------------------


def _rename(name: str, to: str) -> str:
    """'blocks.0.attn.q_proj' <-> 'model.decoder.layers.0.self_attn.q_proj' (any suffix kept)."""
    pairs = [(f"blocks.{{i}}.{toy}", f"model.decoder.layers.{{i}}.{opt}") for toy, opt in TOY_TO_OPT.items()]
    import re

    for toy, opt in pairs:
        src, dst = (toy, opt) if to == "opt" else (opt, toy)
        pattern = "^" + re.escape(src).replace(re.escape("{i}"), r"(\d+)") + r"(?=\.|$)"
        m = re.match(pattern, name)
        if m:
            return dst.format(i=m.group(1)) + name[m.end():]
    raise AdapterFileError(f"layer {name!r} has no {'OPT' if to == 'opt' else 'ToyGPT'} counterpart; "
                           "only LoRA on the blocks' Linear layers can be converted")


def convert_adapter(src, dst, to: str):
    """Copy the PEFT LoRA adapter folder ``src`` to ``dst`` with its layer names for ``to`` ("opt" or "toy").

    export_peft writes toy names (blocks.0.attn.q_proj); PEFT on to_transformers' model writes OPT names
    (model.decoder.layers.0.self_attn.q_proj). Tensors are copied unchanged. Returns ``dst`` as a Path.
    """
    import json
    from pathlib import Path

    from safetensors.torch import save_file

    from .adapters import read_json, read_safetensors, write_atomic
    from .peft_bridge import CONFIG_NAME, PREFIX, WEIGHTS_NAME

    if to not in ("opt", "toy"):
        raise LoraValueError(f"to must be 'opt' or 'toy', got {to!r}")
    src, dst = Path(src), Path(dst)
    if not (src / CONFIG_NAME).is_file() or not (src / WEIGHTS_NAME).is_file():
        raise AdapterFileError(f"{src} holds no {CONFIG_NAME} and {WEIGHTS_NAME}; pass a folder save_pretrained wrote")
    config = read_json(src / CONFIG_NAME)
    if config.get("modules_to_save"):
        raise AdapterFileError(f"{src} also saves whole modules {config['modules_to_save']}; convert LoRA-only adapters")
    tensors = {}
    for key, tensor in read_safetensors(src / WEIGHTS_NAME, "pass a folder save_pretrained wrote")[0].items():
        if not key.startswith(PREFIX):
            raise AdapterFileError(f"{src / WEIGHTS_NAME}: key {key!r} does not start with {PREFIX!r}")
        tensors[PREFIX + _rename(key[len(PREFIX):], to)] = tensor.contiguous()
    targets = config.get("target_modules")
    if isinstance(targets, list) and all("." in t for t in targets):  # qualified names: rename them too
        config["target_modules"] = [_rename(t, to) for t in targets]
    dst.mkdir(parents=True, exist_ok=True)
    write_atomic({dst / WEIGHTS_NAME: lambda tmp: save_file(tensors, tmp, metadata={"format": "pt"}),
                  dst / CONFIG_NAME: lambda tmp: Path(tmp).write_text(json.dumps(config, indent=2) + "\n")})
    return dst
