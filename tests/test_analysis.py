"""The paper's analyses: subspace similarity, amplification factor, effective rank; and notebook 06's cache."""
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors import safe_open

from lora_mini.analysis import (
    amplification_baselines,
    amplification_factor,
    captured_energy,
    effective_rank,
    subspace_similarity,
)

ROOT = Path(__file__).parent.parent


@settings(max_examples=25, deadline=None)
@given(r1=st.integers(1, 8), r2=st.integers(1, 8), seed=st.integers(0, 1000))
def test_subspace_similarity_properties(r1, r2, seed):
    g = torch.Generator().manual_seed(seed)
    A1, A2 = torch.randn(r1, 32, generator=g), torch.randn(r2, 32, generator=g)
    for i in range(1, r1 + 1):
        assert subspace_similarity(A1, A1, i, i) == pytest.approx(1.0, abs=1e-9)
        assert subspace_similarity(A1, 3.0 * A1, i, r1) == pytest.approx(1.0, abs=1e-9)  # scale-free
        for j in range(1, r2 + 1):
            assert -1e-12 <= subspace_similarity(A1, A2, i, j) <= 1 + 1e-9


def test_orthogonal_subspaces_have_zero_similarity():
    eye = torch.eye(6)
    assert subspace_similarity(eye[:3], eye[3:], 3, 3) == pytest.approx(0.0, abs=1e-12)
    assert subspace_similarity(eye[:2], eye[:4], 2, 4) == pytest.approx(1.0)


def test_amplification_factor_and_ranks():
    W = torch.diag(torch.tensor([10.0, 1.0, 0.1]))
    delta = torch.zeros(3, 3)
    delta[2, 2] = 5.0  # boosts the direction W uses least
    assert amplification_factor(delta, W, r=1) == pytest.approx(5.0 / 0.1)
    low = torch.randn(20, 2) @ torch.randn(2, 30)
    assert effective_rank(low, 0.999) <= 2 and effective_rank(torch.eye(10), 0.9) == 9
    assert captured_energy(low, low, 2) == pytest.approx(1.0)


def test_amplification_baselines_read_against_random_directions():
    g = torch.Generator().manual_seed(0)
    U, _, Vh = torch.linalg.svd(torch.randn(40, 40, generator=g))
    W = U @ torch.diag(torch.logspace(1, -2, 40)) @ Vh  # (40, 40): singular values 10 ... 0.01
    along_top = 3.0 * U[:, :2] @ Vh[:2]  # a rank-2 ΔW along W's two strongest directions
    along_weak = 3.0 * U[:, -2:] @ Vh[-2:]  # ... and along its two weakest
    top, weak = amplification_baselines(along_top, W, 2), amplification_baselines(along_weak, W, 2)
    assert top["delta"] == pytest.approx(top["W"]) and top["random"] == pytest.approx(weak["random"])
    assert weak["delta"] < top["random"] < top["delta"]  # random directions lie in between
    assert top["factor"] < top["random_factor"] < weak["factor"]  # only the weak one amplifies beyond chance
    assert weak["factor"] == pytest.approx(amplification_factor(along_weak, W, 2))
    assert amplification_baselines(along_top, W, 2) == amplification_baselines(along_top, W, 2)  # seeded


def test_cache_matches_what_the_script_produces_on_a_small_case():
    sys.path.insert(0, str(ROOT / "scripts"))
    import sweep_06

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        tensors, _ = sweep_06.sweep(steps=5, ranks=(1,), budget=False)
    finally:
        torch.set_num_threads(threads)
    with safe_open(ROOT / "lora_mini" / "data" / "sweep_06.safetensors", framework="pt") as f:
        cached = {k[len("small."):]: f.get_tensor(k) for k in f.keys() if k.startswith("small.")}
    assert cached.keys() == tensors.keys() and len(cached) > 0
    for k, v in tensors.items():
        torch.testing.assert_close(v, cached[k], atol=1e-6, rtol=0)
