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
