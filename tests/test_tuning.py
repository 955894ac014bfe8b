"""lora_mini.tuning: one short run from a RunConfig, the α ↔ learning-rate equivalence, and the live widget."""
import pytest
import torch

from lora_mini import LoraValueError, load_base
from lora_mini.tuning import (LiveRun, RunConfig, build_model, equivalent_lr_factor, good_range, lora_layers, run,
                              steps_to, update_norm)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # as the notebook and the sweep run: bit-for-bit reproducible
    yield
    torch.set_num_threads(before)


def test_build_model_follows_the_config():
    model = build_model(RunConfig(target_modules=("q_proj", "k_proj"), r=2, lora_alpha=6, use_rslora=True))
    layers = lora_layers(model)
    assert len(layers) == 4 and {(l.r, l.alpha, l.scaling) for l in layers} == {(2, 6, 6 / 2 ** 0.5)}
    assert update_norm(model) == 0.0  # B starts at zero
    full = build_model(RunConfig(method="full"))
    assert not lora_layers(full) and all(p.requires_grad for p in full.parameters())


def test_init_scale_multiplies_A_only():
    plain, scaled = build_model(RunConfig()), build_model(RunConfig(init_scale=3.0))
    for a, b in zip(lora_layers(plain), lora_layers(scaled)):
        assert torch.allclose(3.0 * a.lora_A, b.lora_A) and torch.equal(a.lora_B, b.lora_B)


def test_run_is_reproducible_and_records_what_it_did():
    cfg = RunConfig(task="rotate", steps=6, lr=1e-2, eval_every=3)
    first, second = run(cfg), run(cfg)
    assert first.to_dict() == second.to_dict()
    assert len(first.loss) == 6 and first.eval_steps == [3, 6] and first.trainable == 3072
    assert first.delta_norm > 0 and first.final == first.accuracy[-1]
    assert run(RunConfig(task="rotate", steps=6, lr=1e-2, eval_every=3, seed=1)).loss != first.loss


def test_full_update_norm_measures_the_change_from_the_base():
    result = run(RunConfig(method="full", task="rotate", steps=2, lr=1e-3))
    assert result.trainable == sum(p.numel() for p in load_base().parameters())
    assert result.delta_norm > 0
    base = load_base().cpu()
    assert update_norm(load_base().cpu(), base) == 0.0


def test_alpha_is_the_learning_rate_of_the_product_under_adam():
    """α x4 equals learning rate x2 with A's initialisation x2 (Adam ignores a gradient's scale), not lr x4."""
    steps = 8
    alpha_x4 = run(RunConfig(task="rotate", steps=steps, lr=5e-3, lora_alpha=32))
    lr_x2_init_x2 = run(RunConfig(task="rotate", steps=steps, lr=1e-2, lora_alpha=8, init_scale=2.0))
    lr_x4 = run(RunConfig(task="rotate", steps=steps, lr=2e-2, lora_alpha=8))
    same = max(abs(a - b) for a, b in zip(alpha_x4.loss, lr_x2_init_x2.loss))
    naive = max(abs(a - b) for a, b in zip(alpha_x4.loss, lr_x4.loss))
    assert same < 1e-4 < 1e-2 < naive
    assert abs(alpha_x4.delta_norm - lr_x2_init_x2.delta_norm) < 1e-3 * alpha_x4.delta_norm


def test_equivalent_lr_factor_is_the_square_root():
    assert equivalent_lr_factor(4, 2) == 2  # quiz 05's numeric answer
    assert equivalent_lr_factor(16, 4, candidates=(2, 4, 16)) == 4


def test_good_range_and_steps_to():
    assert good_range([1e-3, 1e-2, 1e-1], [0.2, 0.95, 0.91]) == (1e-2, 1e-1)
    assert good_range([1e-3, 1e-2], [0.2, 0.5]) is None
    result = run(RunConfig(task="rotate", steps=4, lr=1e-2, eval_every=2))
    result.accuracy = [0.5, 0.97]
    assert steps_to(result) == 4 and steps_to(result, 0.99) is None


@pytest.mark.parametrize("bad", [dict(method="lora+"), dict(lr=0.0), dict(lr=float("nan")), dict(steps=0),
                                 dict(init_scale=-1.0)])
def test_bad_config_is_refused_with_the_fix(bad):
    with pytest.raises(LoraValueError, match=next(iter(bad))):
        build_model(RunConfig(**bad))


def test_live_run_retrains_when_a_control_moves():
    import ipywidgets as W

    drawn = []
    slider = W.SelectionSlider(options=[1e-3, 1e-2], value=1e-2)
    live = LiveRun({"lr": slider}, lambda lr: RunConfig(task="rotate", steps=4, lr=lr, eval_every=2), drawn.append)
    assert len(live.results) == 1 and drawn == live.results and live.progress.value == live.progress.max == 4
    slider.value = 1e-3
    assert len(live.results) == 2 and live.results[-1].config.lr == 1e-3 and drawn[-1] is live.results[-1]
    assert live.results[0].loss != live.results[1].loss and live.progress.bar_style == "success"
