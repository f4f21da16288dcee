"""Birkhoff–von Neumann: a doubly stochastic matrix as a convex combination of permutations.

Every doubly stochastic matrix M (entries >= 0, all row and column sums 1) can be written as
M = Σ_i w_i P_i with permutation matrices P_i and weights w_i >= 0 summing to 1 (Birkhoff 1946).
The greedy construction used here: the positive entries of M always contain a permutation (a
perfect matching, by Hall's theorem), so find one, take it with the weight of its smallest entry,
subtract, and repeat. Each step zeros at least one entry, so it stops after at most n² − 2n + 2
terms.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from .sinkhorn import doubly_stochastic_error

__all__ = ["birkhoff_decomposition"]

# Cost of an entry outside the positive support: large enough that linear_sum_assignment only
# uses one when the support holds no permutation, finite so that it never raises.
_OFF_SUPPORT_COST = 1e12


def birkhoff_decomposition(
    matrix: Tensor, tol: float = 1e-6, max_terms: int | None = None
) -> tuple[Tensor, Tensor]:
    """Write a doubly stochastic matrix as a convex combination of permutation matrices.

    Greedy: on the entries of the residual that are still above ``tol``, find a permutation with
    :func:`scipy.optimize.linear_sum_assignment` (maximising the product of its entries, which
    favours permutations without tiny entries), give it the weight of its smallest entry,
    subtract, and repeat until nothing above ``tol`` is left. The decomposition is not unique;
    this one is found in at most n² − 2n + 2 steps.

    Args:
        matrix: (n, n) doubly stochastic matrix, a tensor or array. Computed in float64.
        tol: tolerance of the input check (:func:`~wslib.sinkhorn.doubly_stochastic_error` must
            be at most ``tol``) and the size below which a residual entry counts as zero.
        max_terms: stop after this many terms (the weights then sum to less than 1).

    Returns:
        ``(weights, permutation_matrices)``: shapes (m,) and (m, n, n), in the input's floating
        dtype (float64 otherwise), weights in the order they were found. Without
        ``max_terms`` the weights sum to 1 and ``Σ_i weights[i] * permutation_matrices[i]``
        reproduces ``matrix`` to within about n·tol.

    Raises:
        ValueError: if ``matrix`` is not square, not finite, or not doubly stochastic within
            ``tol``; or if ``max_terms < 1``.
    """
    t = torch.as_tensor(matrix)
    dtype = t.dtype if t.is_floating_point() else torch.float64
    m = t.detach().cpu().to(torch.float64)
    if m.dim() != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"matrix must be square (n, n); got {tuple(m.shape)}")
    if max_terms is not None and max_terms < 1:
        raise ValueError(f"max_terms must be >= 1; got {max_terms}")
    if not torch.isfinite(m).all():
        raise ValueError("matrix contains NaN or infinite values")
    err = float(doubly_stochastic_error(m))
    if err > tol:
        raise ValueError(
            f"matrix is not doubly stochastic within tol={tol:g}: a row/column sum is off by, or "
            f"an entry is negative by, {err:.3g}"
        )

    n = m.shape[0]
    residual = m.numpy().copy()
    limit = n * n - 2 * n + 2 if max_terms is None else max_terms
    weights: list[float] = []
    perms: list[np.ndarray] = []
    while len(weights) < limit:
        support = residual > tol
        if not support.any():
            break
        cost = np.where(support, -np.log(np.where(support, residual, 1.0)), _OFF_SUPPORT_COST)
        rows, cols = linear_sum_assignment(cost)
        if not support[rows, cols].all():
            break  # what is left holds no permutation: rounding residue below ~n·tol
        weight = float(residual[rows, cols].min())
        residual[rows, cols] -= weight
        weights.append(weight)
        perms.append(cols)

    eye = torch.eye(n, dtype=dtype)
    perm_mats = torch.zeros(0, n, n, dtype=dtype)
    if perms:
        perm_mats = torch.stack([eye[torch.as_tensor(c)] for c in perms])  # row i is e_{c[i]}
    return torch.tensor(weights, dtype=dtype), perm_mats
