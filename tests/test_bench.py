"""The benchmark command: it runs, and its figures are sane. No timing asserts: the machine is shared."""
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lora_mini import GPTConfig, count_parameters
from lora_mini.bench import BenchConfig, Samples, floor_model, floor_step, interleaved, matmul_flops
from lora_mini.bench.course import course_notebooks
from lora_mini.model import ToyGPT
from lora_mini.notebook_runner import find_notebooks
from lora_mini.tasks import random_batch

ROOT = Path(__file__).resolve().parent.parent


def closed_form(config: GPTConfig, B: int, T: int, r: int) -> dict[str, int]:
    """Matmul FLOPs per training step written out for ToyGPT with LoRA on q_proj and v_proj."""
    L, C, V, N = config.n_layer, config.n_embd, config.vocab_size, B * T
    lin = 24 * N * C * C  # q, k, v, o: 4 · 2NC²; fc1, fc2: 2 · 2N·C·4C
    att = 4 * B * T * T * C  # Q Kᵀ and P V
    head = 2 * N * C * V
    floor = 2 * L * lin + 3 * L * att + 2 * head  # forward + input gradients (attention: 2x backward)
    return {
        "forward": L * (lin + att) + head,
        "full": 3 * L * lin + 3 * L * att + 3 * head,  # + weight gradients of every Linear
        "floor": floor,
        # LoRA skips block 0's q, k, v input gradients (6NC²); adds 3 · (2NrC + 2NrC) per adapted layer,
        # less the input gradient through A in block 0's two layers (nothing below them needs one).
        "lora": floor - 6 * N * C * C + 2 * L * 12 * N * r * C - 2 * 2 * N * r * C,
    }


def test_matmul_flops_by_hand_for_a_tiny_model():
    config = GPTConfig(vocab_size=3, block_size=2, n_layer=1, n_head=1, n_embd=4)
    # B=1, T=2: N=2 tokens, C=4. q, k, v, o: 2·2·4·4 = 64 each; fc1, fc2: 2·2·4·16 = 256 each;
    # attention 4·1·2·2·4 = 64; lm_head 2·2·4·3 = 48. Forward: 4·64 + 2·256 + 64 + 48 = 880.
    # Input gradients: 768 (six Linears) + 2·64 (attention) + 48 = 944; weight gradients: 768 + 48 = 816.
    assert matmul_flops(config, 1, 2, "full").forward == 880
    assert matmul_flops(config, 1, 2, "full").total == 880 + 944 + 816
    assert matmul_flops(config, 1, 2, "floor").total == 880 + 944
    # LoRA r=1 on q, v: A and B cost 2·2·4·1 = 16 each, so forward 880 + 2·32 = 944 and weight gradients 2·32 = 64.
    # Input gradients: no q, k, v ones (block 0's input needs none): 944 - 3·64 = 752, plus B's (16) in each layer.
    lora = matmul_flops(config, 1, 2, "lora", ["q_proj", "v_proj"], r=1)
    assert (lora.forward, lora.input_grad, lora.weight_grad) == (944, 752 + 2 * 16, 64)


def test_matmul_flops_match_the_closed_form():
    config = GPTConfig(block_size=64, n_layer=4, n_head=8, n_embd=512)
    expected = closed_form(config, B=32, T=64, r=8)
    for mode in ("full", "floor", "lora"):
        assert matmul_flops(config, 32, 64, mode, ["q_proj", "v_proj"], r=8).total == expected[mode], mode
    assert matmul_flops(config, 32, 64, "floor").forward == expected["forward"]
    assert 0.65 < expected["lora"] / expected["full"] < 0.67  # what the bench predicts for LoRA / full


def test_floor_backward_reaches_the_embeddings_and_makes_no_weight_gradient():
    config = GPTConfig(block_size=8, n_layer=2, n_head=2, n_embd=16)
    floor = floor_model(ToyGPT(config))
    seen = []
    floor.tok_emb.register_forward_hook(lambda module, inputs, output: seen.append(output))
    floor_step(floor, *random_batch(config, 2, torch.Generator().manual_seed(0)))
    assert seen[0].grad is not None and seen[0].grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in floor.parameters())


def test_interleaved_rotates_the_order_and_ratios_are_medians_of_round_ratios():
    calls = []
    cfg = BenchConfig(warmup=1, repeats=3, min_sample_s=0.0)
    samples = interleaved({n: (lambda n=n: calls.append(n)) for n in "abc"}, cfg)
    assert calls[4:] == list("abc" "bca" "cab")  # after 1 warm-up round and 1 calibration call
    assert all(len(s) == 3 and min(s) > 0 for s in samples.seconds.values())
    s = Samples({"x": [2.0, 9.0, 3.0], "y": [1.0, 3.0, 1.0]}, {})
    assert s.ratio("x", "y") == 3.0 and s.median("x") == 3.0


def test_notebooks_come_from_the_folder_given_and_a_missing_folder_is_said_plainly(tmp_path, capsys):
    cfg = BenchConfig(notebook_dir=str(tmp_path / "nowhere"))
    assert course_notebooks(cfg) == []
    assert f"notebooks skipped: there is no folder {tmp_path / 'nowhere'}" in capsys.readouterr().out
    (tmp_path / "solutions").mkdir()
    for name in ("b.ipynb", "a.ipynb", "solutions/c.ipynb", ".ipynb_checkpoints/a-checkpoint.ipynb"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("{}")
    assert [p.relative_to(tmp_path).as_posix() for p in find_notebooks(tmp_path)] == [
        "a.ipynb", "b.ipynb", "solutions/c.ipynb"]
    assert course_notebooks(BenchConfig(notebook_dir=str(tmp_path), notebooks=("b.ipynb",))) == [tmp_path / "b.ipynb"]
    assert course_notebooks(BenchConfig(notebook_dir=str(tmp_path), notebooks=("z.ipynb",))) == []
    assert "holds none of z.ipynb" in capsys.readouterr().out


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    out = subprocess.run(
        [sys.executable, "-m", "lora_mini.bench", "--quick", "--json", tmp / "bench.json", "--chart", tmp / "bench.png"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,  # the notebooks come from ./notebooks
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout, json.loads((tmp / "bench.json").read_text()), (tmp / "bench.png").read_bytes()


def test_quick_run_prints_the_tables_and_draws_the_chart(quick):
    stdout, results, png = quick
    assert "| figure | measured | predicted (matmul FLOPs) | target | result |" in stdout
    assert "Quick run" in stdout and results["quick"] is True
    assert png.startswith(b"\x89PNG")
    assert results["machine"]["torch_threads"] >= 1 and results["wall_seconds"] > 0


def test_quick_run_chart_labels_every_axes(quick):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lora_mini.bench.chart import chart_figure
    from lora_mini.plots import unlabelled

    fig = chart_figure(quick[1])
    try:
        assert unlabelled(fig) == [] and len(fig.axes) == 5
    finally:
        plt.close(fig)


def test_quick_run_checks_are_finite_with_a_verdict(quick):
    _, results, _ = quick
    names = [c["name"] for c in results["checks"]]
    for part in ("LoRA / floor", "LoRA / full fine-tuning", "merged LoRA / base", "lora_mini / PEFT", "slowest",
                 "load_base"):
        assert any(part in n for n in names), part
    for c in results["checks"]:
        assert math.isfinite(c["measured"]) and c["measured"] > 0, c
        assert c["passed"] is None if c["target"] is None else c["passed"] in (True, False), c


def test_quick_run_step_times_and_flop_predictions(quick):
    _, results, _ = quick
    config = GPTConfig(**results["config"]["model"])
    expected = closed_form(config, B=results["config"]["batch_size"], T=config.block_size, r=results["config"]["r"])
    for mode in ("floor", "lora", "full"):
        run = results["training"][mode]
        assert run["flops"] == expected[mode]
        assert len(run["samples"]) == results["config"]["repeats"] and min(run["samples"]) > 0
        assert run["seconds"] == sorted(run["samples"])[len(run["samples"]) // 2]
    inference = results["inference"]
    assert inference["merged"]["flops"] == inference["base"]["flops"] < inference["unmerged"]["flops"]
    assert inference["merged_vs_unmerged_max_abs_diff"] < 1e-4


def test_quick_run_memory_breakdown_sums_to_the_accounted_peak(quick):
    _, results, _ = quick
    config = GPTConfig(**results["config"]["model"])
    n_full = count_parameters(ToyGPT(config)).total
    for name, m in results["memory"].items():
        a = m["accounted"]
        kinds = ("weights", "gradients", "optimizer", "activations", "temporaries")
        assert sum(a[k] for k in kinds) == a["total"], name
        assert min(a[k] for k in kinds) >= 0 and a["activations"] > 0
        assert m["measured_rss"] > 0 and m["measured_rss_glibc_default"] > 0
    assert results["memory"]["full"]["accounted"]["weights"] == 4 * n_full
    assert results["memory"]["full"]["accounted"]["gradients"] == 4 * n_full
    assert results["memory"]["lora"]["accounted"]["gradients"] < results["memory"]["full"]["accounted"]["gradients"] / 10


def test_quick_run_peers_and_notebook(quick):
    _, results, _ = quick
    assert results["peers"]["input_requires_grad"] is True
    for p in results["peers"]["points"]:
        assert min(p[f"{n}_seconds"] for n in ("lora_mini", "peft", "loralib")) > 0
        assert math.isfinite(p["lora_mini/peft"]) and math.isfinite(p["lora_mini/loralib"])
    (notebook,) = results["notebooks"]["notebooks"]
    assert notebook["notebook"] == "12_review.ipynb"
    assert notebook["seconds"] > 0 and notebook["peak_rss_mb"] > 100  # a kernel with torch imported
    assert results["notebooks"]["load_base_seconds"] > 0
