"""The bridge to PEFT: adapters cross in both directions with the same outputs (atol 1e-5)."""
import json

import pytest
import torch
from conftest import assert_same, snapshot
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file, save_file

from lora_mini import (
    DoRALinear,
    LoRALinear,
    export_peft,
    import_peft,
    inject_lora,
    load_base,
    lora_state_dict,
    make_batch,
    merge_lora,
    train,
)

TARGETS = ["q_proj", "v_proj", "fc1"]
VARIANTS = {"lora": {}, "rslora": {"use_rslora": True}, "dora": {"use_dora": True}}


def _batch(n=16):
    return make_batch("rotate", n, torch.Generator().manual_seed(1))[0]


def _trained(variant, steps=5):
    """A lora_mini model whose adapter has trained a few steps (B, and DoRA's m, no longer at init)."""
    model = load_base().cpu()
    inject_lora(model, TARGETS, r=4, alpha=8, **VARIANTS[variant])
    train(model, "rotate", steps=steps, lr=1e-2, progress=False)
    return model.cpu().eval()  # train() moves the model to CUDA when there is one


@pytest.mark.parametrize("variant", VARIANTS)
def test_export_loads_in_peft_with_the_same_outputs(variant, tmp_path):
    model = _trained(variant)
    assert all(torch.count_nonzero(v) for k, v in lora_state_dict(model).items() if k.endswith("lora_B"))
    export_peft(model, tmp_path)
    peft_model = PeftModel.from_pretrained(load_base().cpu(), tmp_path).eval()
    x = _batch()
    ours, theirs = model(x)[0], peft_model(x)[0]
    assert not torch.allclose(ours, load_base().cpu()(x)[0], atol=1e-2)  # the adapter does something
    torch.testing.assert_close(theirs, ours, atol=1e-5, rtol=0)


@pytest.mark.parametrize("variant", VARIANTS)
def test_import_of_a_peft_trained_adapter_gives_the_same_outputs(variant, tmp_path):
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["k_proj", "fc2"], **VARIANTS[variant])
    peft_model = get_peft_model(load_base().cpu(), config)
    train(peft_model, "swap_pairs", steps=5, lr=1e-2, progress=False)
    peft_model.cpu().eval().save_pretrained(tmp_path)
    model = load_base().cpu()
    names = import_peft(model, tmp_path)
    assert names == [f"blocks.{i}.{p}" for i in range(2) for p in ("attn.k_proj", "mlp.fc2")]
    layer_class = DoRALinear if variant == "dora" else LoRALinear
    assert all(type(model.get_submodule(n)) is layer_class for n in names)
    assert all(model.get_submodule(n).config.use_rslora == (variant == "rslora") for n in names)
    x = _batch()
    ours, theirs = model(x)[0], peft_model(x)[0]
    assert not torch.allclose(ours, load_base().cpu()(x)[0], atol=1e-2)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)


def test_export_writes_peft_names_and_config(tmp_path):
    model = _trained("dora", steps=1)
    export_peft(model, tmp_path / "out")
    config = json.loads((tmp_path / "out" / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["r"] == 4 and config["lora_alpha"] == 8
    assert config["use_dora"] is True and config["use_rslora"] is False and config["bias"] == "none"
    layers = [f"blocks.{i}.{p}" for i in range(2) for p in ("attn.q_proj", "attn.v_proj", "mlp.fc1")]
    assert config["target_modules"] == layers  # qualified names: PEFT adapts exactly these
    tensors = load_file(tmp_path / "out" / "adapter_model.safetensors")
    q, fc1 = model.blocks[0].attn.q_proj, model.blocks[1].mlp.fc1
    assert torch.equal(tensors["base_model.model.blocks.0.attn.q_proj.lora_A.weight"], q.lora_A)
    assert torch.equal(tensors["base_model.model.blocks.1.mlp.fc1.lora_magnitude_vector"], fc1.lora_magnitude_vector)
    assert len(tensors) == 6 * 3
    assert LoraConfig.from_pretrained(tmp_path / "out").target_modules == set(config["target_modules"])


def test_export_then_import_is_exact(tmp_path):
    model = _trained("rslora", steps=2)
    export_peft(model, tmp_path)
    back = load_base().cpu()
    import_peft(back, tmp_path)
    assert all(torch.equal(v, lora_state_dict(back)[k]) for k, v in lora_state_dict(model).items())
    x = _batch()
    assert torch.equal(back(x)[0], model(x)[0])


def test_export_refuses_pissa_and_merged_layers(tmp_path):
    pissa = load_base().cpu()
    inject_lora(pissa, ["q_proj"], r=4, alpha=8, init_lora_weights="pissa")
    with pytest.raises(ValueError, match="PiSSA adapter only works on the residual base"):
        export_peft(pissa, tmp_path / "p")
    merged = _trained("lora", steps=1)
    merge_lora(merged)
    with pytest.raises(ValueError, match="unmerge_lora"):
        export_peft(merged, tmp_path / "m")
    with pytest.raises(ValueError, match="no LoRA layers"):
        export_peft(load_base().cpu(), tmp_path / "n")
    assert not any((tmp_path / d).exists() for d in ("p", "m", "n"))


def _expect_import_error(model, directory, words):
    before = snapshot(model)
    with pytest.raises(ValueError, match=words):
        import_peft(model, directory)
    assert_same(before, snapshot(model))


def test_import_bad_input_leaves_the_model_alone(tmp_path):
    export_peft(_trained("lora", steps=1), tmp_path / "good")
    _expect_import_error(load_base().cpu(), tmp_path / "missing", "no adapter_config.json")
    adapted = load_base().cpu()
    inject_lora(adapted, ["q_proj"], r=2, alpha=2)
    _expect_import_error(adapted, tmp_path / "good", "pass a base without LoRA layers")

    def variant(name, config_change=None, tensors_change=None):
        d = tmp_path / name
        d.mkdir()
        config = json.loads((tmp_path / "good" / "adapter_config.json").read_text()) | (config_change or {})
        (d / "adapter_config.json").write_text(json.dumps(config))
        tensors = load_file(tmp_path / "good" / "adapter_model.safetensors")
        save_file(tensors | (tensors_change or {}), d / "adapter_model.safetensors")
        return d

    _expect_import_error(load_base().cpu(), variant("bias", {"bias": "all"}), "bias='all'")
    pissa = variant("pissa", {"init_lora_weights": "pissa"})
    _expect_import_error(load_base().cpu(), pissa, "changes the base weights")
    _expect_import_error(load_base().cpu(), variant("pattern", {"rank_pattern": {"q_proj": 8}}), "rank_pattern")
    _expect_import_error(load_base().cpu(), variant("ia3", {"peft_type": "IA3"}), "peft_type must be 'LORA'")
    bad_shape = {"base_model.model.blocks.0.attn.q_proj.lora_A.weight": torch.zeros(4, 7)}
    shape = variant("shape", tensors_change=bad_shape)
    _expect_import_error(load_base().cpu(), shape, "blocks.0.attn.q_proj: file has")
    other = {"base_model.model.blocks.0.attn.nothing.lora_A.weight": torch.zeros(4, 96),
             "base_model.model.blocks.0.attn.nothing.lora_B.weight": torch.zeros(96, 4)}
    _expect_import_error(load_base().cpu(), variant("name", tensors_change=other), "no nn.Linear of that name")
    extra = {"base_model.model.lm_head.lora_embedding_A": torch.zeros(4, 18)}
    _expect_import_error(load_base().cpu(), variant("extra", tensors_change=extra), "lora_embedding_A")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "adapter_config.json").write_text((tmp_path / "good" / "adapter_config.json").read_text())
    (tmp_path / "junk" / "adapter_model.safetensors").write_bytes(b"not a safetensors file")
    _expect_import_error(load_base().cpu(), tmp_path / "junk", "not a readable safetensors")
