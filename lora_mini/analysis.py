"""The LoRA paper's analyses of learned updates (Hu et al. 2021, section 7), for small matrices."""
from __future__ import annotations

import torch


def subspace_similarity(A1: torch.Tensor, A2: torch.Tensor, i: int, j: int) -> float:
    """φ(A1, A2, i, j) = ‖U1[:, :i]ᵀ U2[:, :j]‖²_F / min(i, j), in [0, 1].

    A1 (r1, in) and A2 (r2, in) are LoRA A matrices; U1, U2 are their right-singular
    vectors (in, ·). 1 means the top-i directions of one lie inside the top-j of the other.
    """
    U1 = torch.linalg.svd(A1.double(), full_matrices=False).Vh.T  # (in, r1)
    U2 = torch.linalg.svd(A2.double(), full_matrices=False).Vh.T  # (in, r2)
    overlap = U1[:, :i].T @ U2[:, :j]  # (i, j)
    return (overlap.norm() ** 2 / min(i, j)).item()


def amplification_factor(delta: torch.Tensor, W: torch.Tensor, r: int) -> float:
    """‖ΔW‖_F / ‖Uᵀ W Vᵀ‖_F, with U, V the top-r singular vectors of ΔW (out, in).

    How strongly ΔW amplifies the directions of W it points along: large when ΔW boosts
    directions that W itself barely uses.
    """
    U, _, Vh = torch.linalg.svd(delta.double(), full_matrices=False)  # U (out, k), Vh (k, in)
    projected = U[:, :r].T @ W.double() @ Vh[:r].T  # (r, r): W seen in ΔW's top-r directions
    return (delta.double().norm() / projected.norm()).item()


def effective_rank(M: torch.Tensor, energy: float = 0.9) -> int:
    """Fewest singular values whose squares hold ``energy`` of ‖M‖²_F."""
    s2 = torch.linalg.svdvals(M.double()) ** 2
    return int((s2.cumsum(0) / s2.sum() < energy).sum().item()) + 1


def captured_energy(target: torch.Tensor, basis_from: torch.Tensor, r: int) -> float:
    """Share of ‖target‖²_F inside the top-r left and right singular subspaces of ``basis_from``."""
    U, _, Vh = torch.linalg.svd(basis_from.double(), full_matrices=False)
    inside = U[:, :r].T @ target.double() @ Vh[:r].T  # (r, r)
    return (inside.norm() ** 2 / target.double().norm() ** 2).item()


def projected_norm(W: torch.Tensor, U: torch.Tensor, Vh: torch.Tensor, r: int) -> float:
    """‖Uᵀ W Vᵀ‖_F over the top-r directions U (out, ≥r) and Vh (≥r, in): how much of W lies in them."""
    return (U[:, :r].T @ W.double() @ Vh[:r].T).norm().item()  # (r, r)


def amplification_baselines(delta: torch.Tensor, W: torch.Tensor, r: int, samples: int = 32, seed: int = 0) -> dict:
    """The LoRA paper's Table 7 for one matrix: ‖Uᵀ W Vᵀ‖_F with U, V the top-r singular directions of
    ΔW, of W itself, and of random matrices (the mean over ``samples`` Gaussian draws); and the
    amplification factor ‖ΔW‖_F / ‖Uᵀ W Vᵀ‖_F of ΔW next to that of random directions holding the same norm.

    A factor means little on its own: random directions also see little of W, so they give large factors
    too. The paper's reading rests on the comparison: ΔW's directions hold more of W than random ones
    (ΔW correlates with W) and far less than W's own top directions (ΔW boosts what W does not emphasise).
    """
    U, _, Vh = torch.linalg.svd(delta.double(), full_matrices=False)
    Uw, _, Vhw = torch.linalg.svd(W.double(), full_matrices=False)
    g = torch.Generator().manual_seed(seed)
    rand = []
    for _ in range(samples):
        Ur, _, Vhr = torch.linalg.svd(torch.randn(W.shape, generator=g, dtype=torch.float64), full_matrices=False)
        rand.append(projected_norm(W, Ur, Vhr, r))
    out = {"delta": projected_norm(W, U, Vh, r), "W": projected_norm(W, Uw, Vhw, r), "random": sum(rand) / samples}
    norm = delta.double().norm().item()
    return {**out, "factor": norm / out["delta"], "random_factor": norm / out["random"]}
