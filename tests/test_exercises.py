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


# issue 18, root cause 14: whatever the learner's function returns or does, a checker reports, never raises
ODD_RESULTS = [None, "text", 3, float("nan"), torch.zeros(2), torch.zeros(2, dtype=torch.float64),
               torch.zeros(7, 32, dtype=torch.long), torch.zeros(7, 32, dtype=torch.bool), [1.0, 2.0], object()]


@pytest.mark.parametrize("checker", [check_lora_forward, check_merge, check_trainable_params, check_subspace_similarity])
@pytest.mark.parametrize("result", ODD_RESULTS, ids=lambda r: type(r).__name__ + str(getattr(r, "dtype", "")))
def test_checkers_report_odd_results(checker, result, capsys):
    assert checker(lambda *args: result) is False
    out = capsys.readouterr().out
    assert out.startswith("❌") and len(out.splitlines()) == 1


@pytest.mark.parametrize("checker", [check_lora_forward, check_merge, check_trainable_params, check_subspace_similarity])
def test_checkers_report_a_non_function(checker, capsys):
    assert checker(None) is False and "pass your function itself" in capsys.readouterr().out


def test_float64_answers_are_compared_not_crashed_on(capsys):
    assert check_lora_forward(lambda x, W, b, A, B, s: (x @ W.T + b + s * (x @ A.T) @ B.T).double()) is True
    assert check_merge(lambda W, A, B, s: (W + s * B @ A).double()) is True
    assert check_merge(lambda W, A, B, s: (W + B @ A).double()) is False
    assert "scaling is missing" in capsys.readouterr().out.splitlines()[-1]
