import pytest
import torch

from wslib import doubly_stochastic_error, sinkhorn
from wslib.birkhoff import birkhoff_decomposition


def _random_mixture(n: int, terms: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    weights = torch.rand(terms, generator=g, dtype=torch.float64) + 0.1
    weights /= weights.sum()
    perms = torch.stack([torch.eye(n, dtype=torch.float64)[torch.randperm(n, generator=g)] for _ in range(terms)])
    return torch.einsum("m,mij->ij", weights, perms), weights, perms


def _is_permutation_matrix(p: torch.Tensor) -> bool:
    ones = torch.ones(p.shape[-1], dtype=p.dtype)
    return bool(((p == 0) | (p == 1)).all() and torch.equal(p.sum(-1), ones) and torch.equal(p.sum(-2), ones))


@pytest.mark.parametrize("n, terms, seed", [(1, 1, 0), (4, 3, 1), (6, 5, 2), (9, 12, 3)])
def test_reconstructs_a_known_convex_mixture(n, terms, seed):
    matrix, _, _ = _random_mixture(n, terms, seed)
    weights, perms = birkhoff_decomposition(matrix)
    assert weights.dtype == perms.dtype == torch.float64
    assert perms.shape == (len(weights), n, n)
    assert (weights > 0).all()
    assert weights.sum().item() == pytest.approx(1.0, abs=1e-12)
    assert all(_is_permutation_matrix(p) for p in perms)
    assert len(weights) <= n * n - 2 * n + 2  # Marcus–Ree bound on the number of terms
    torch.testing.assert_close(torch.einsum("m,mij->ij", weights, perms), matrix, atol=1e-12, rtol=0)


def test_recovers_a_mixture_of_permutations_with_disjoint_supports():
    # Powers of one cyclic shift never share an entry, so the decomposition is unique.
    n = 5
    shift = torch.roll(torch.eye(n, dtype=torch.float64), 1, dims=0)
    true_perms = torch.stack([torch.linalg.matrix_power(shift, a) for a in range(3)])
    true_weights = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    weights, perms = birkhoff_decomposition(torch.einsum("m,mij->ij", true_weights, true_perms))
    found = sorted(zip(weights.tolist(), perms), key=lambda wp: -wp[0])
    assert [w for w, _ in found] == pytest.approx(true_weights.tolist(), abs=1e-12)
    for (_, p), q in zip(found, true_perms):
        assert torch.equal(p, q)


def test_sinkhorn_output_and_dtype_follow_the_input():
    torch.manual_seed(4)
    matrix = sinkhorn(torch.randn(7, 7), n_iter=200)
    assert doubly_stochastic_error(matrix) < 1e-6
    weights, perms = birkhoff_decomposition(matrix)
    assert weights.dtype == perms.dtype == torch.float32
    assert weights.sum().item() == pytest.approx(1.0, abs=1e-5)
    torch.testing.assert_close(torch.einsum("m,mij->ij", weights, perms), matrix, atol=1e-5, rtol=0)


def test_permutation_matrix_is_its_own_decomposition():
    p = torch.eye(6)[torch.tensor([3, 0, 5, 1, 2, 4])]
    weights, perms = birkhoff_decomposition(p.numpy())  # arrays are accepted too
    assert weights.tolist() == [1.0] and torch.equal(perms[0], p)


def test_max_terms_truncates():
    matrix, _, _ = _random_mixture(6, 5, 5)
    weights, perms = birkhoff_decomposition(matrix, max_terms=2)
    assert len(weights) == len(perms) == 2
    assert 0 < weights.sum() < 1
    # Whatever was taken is still part of the matrix: the residual stays non-negative.
    assert (matrix - torch.einsum("m,mij->ij", weights, perms) >= -1e-12).all()


@pytest.mark.parametrize(
    "bad, kwargs, match",
    [
        (torch.full((3, 4), 0.25), {}, "square"),
        (torch.full((2, 3, 3), 1 / 3), {}, "square"),
        (torch.full((4, 4), 0.3), {}, "not doubly stochastic"),
        (torch.tensor([[1.5, -0.5], [-0.5, 1.5]]), {}, "not doubly stochastic"),
        (torch.tensor([[float("nan"), 1.0], [1.0, 0.0]]), {}, "NaN"),
        (torch.eye(3), {"max_terms": 0}, "max_terms"),
    ],
)
def test_bad_inputs_raise(bad, kwargs, match):
    with pytest.raises(ValueError, match=match):
        birkhoff_decomposition(bad, **kwargs)


def test_tolerance_decides_what_counts_as_doubly_stochastic():
    matrix = torch.full((4, 4), 0.25, dtype=torch.float64)
    matrix[0, 0] += 1e-4
    with pytest.raises(ValueError, match="1e-06"):
        birkhoff_decomposition(matrix)
    weights, _ = birkhoff_decomposition(matrix, tol=1e-3)
    assert weights.sum().item() == pytest.approx(1.0, abs=1e-3)
