"""The exercise checkers: right answers pass, stubs and common mistakes get specific, actionable feedback."""
import pytest

import torch

from lora_mini import check_lora_forward, check_merge, check_subspace_similarity, check_trainable_params


def stub(*args):
    raise NotImplementedError


def test_correct_answers_pass(capsys):
    assert check_lora_forward(lambda x, W, b, A, B, s: x @ W.T + b + s * (x @ A.T) @ B.T)
    assert check_trainable_params(lambda i, o, r: r * (i + o))
    assert check_merge(lambda W, A, B, s: W + s * B @ A)
    assert capsys.readouterr().out.count("✅") == 3


@pytest.mark.parametrize("check", [check_lora_forward, check_trainable_params, check_merge, check_subspace_similarity])
def test_stub_reports_not_implemented_without_raising(check, capsys):
    assert check(stub) is False
    assert "not implemented yet" in capsys.readouterr().out


@pytest.mark.parametrize(
    "fn, words",
    [
        (lambda x, W, b, A, B, s: x @ W.T + b + (x @ A.T) @ B.T, "missing its scaling"),
        (lambda x, W, b, A, B, s: s * (x @ A.T) @ B.T, "add the frozen layer"),
        (lambda x, W, b, A, B, s: x @ W.T + b + s * (x @ A) @ B, "check the shapes"),
        (lambda x, W, b, A, B, s: (x @ W.T + b + s * (x @ A.T) @ B.T).T, "expected, got"),
        (lambda x, W, b, A, B, s: x @ W.T + b + s * (x @ A.T) @ B.T + 1, "values differ"),
    ],
)
def test_forward_mistakes(fn, words, capsys):
    assert check_lora_forward(fn) is False
    assert words in capsys.readouterr().out


@pytest.mark.parametrize(
    "fn, words",
    [(lambda i, o, r: i * o, "size of the frozen W"), (lambda i, o, r: r * i, "only one of the two"),
     (lambda i, o, r: 2 * r * i, "expected")],
)
def test_count_mistakes(fn, words, capsys):
    assert check_trainable_params(fn) is False
    assert words in capsys.readouterr().out


def test_merge_mistakes(capsys):
    assert check_merge(lambda W, A, B, s: W + B @ A) is False
    assert "scaling is missing" in capsys.readouterr().out
    assert check_merge(lambda W, A, B, s: s * A.T @ B.T) is False
    assert "expected (the shape of W)" in capsys.readouterr().out


def _phi(A1, A2, i, j, divide=True, right=True):
    svd = torch.linalg.svd
    U1 = svd(A1, full_matrices=False).Vh.T if right else svd(A1, full_matrices=False).U
    U2 = svd(A2, full_matrices=False).Vh.T if right else svd(A2, full_matrices=False).U
    v = (U1[:, :i].T @ U2[:, :j]).norm() ** 2
    return v / min(i, j) if divide else v


def test_subspace_similarity_checker(capsys):
    assert check_subspace_similarity(_phi)
    assert check_subspace_similarity(lambda *a: _phi(*a, divide=False)) is False
    assert "divide the squared norm by min(i, j)" in capsys.readouterr().out
    assert check_subspace_similarity(lambda *a: _phi(*a, right=False)) is False
    assert "RIGHT-singular" in capsys.readouterr().out
