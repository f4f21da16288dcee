"""What did a stack learn? Compare learned matrices with permutations and with a known group.

For each learned (doubly stochastic) matrix R this module answers:

* how permutation-like it is -- :func:`mean_row_max` (1 for a permutation, 1/d for uniform);
* which permutation it is closest to -- :func:`nearest_permutation` (Hungarian matching);
* which element of a given group it is closest to -- :func:`nearest_group_element`;
* the paper's metric: the convex combination Σ_g w_g P_g of the group's matrices that fits R
  best (w ≥ 0, Σ w = 1, constrained least squares) -- :func:`convex_coefficients`; a matrix
  that *is* P_h gets w = e_h;
* whether a set of learned matrices is closed under composition -- :func:`closure`;
* how equivariant a model is, under a group's action or under arbitrary rotation angles --
  :func:`group_equivariance_error`, :func:`rotation_equivariance_error`.

The fits run in float64 NumPy/SciPy on the CPU; they are analysis, not training.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment, minimize
from torch import Tensor

from .equivariance import (
    EquivarianceResult,
    equivariance_error,
    group_feature_action,
    image_action,
    invariant_action,
)
from .groups import FiniteGroup

__all__ = [
    "mean_row_max",
    "nearest_permutation",
    "nearest_group_element",
    "convex_coefficients",
    "Recovery",
    "recovery",
    "Closure",
    "closure",
    "group_equivariance_error",
    "rotation_equivariance_error",
]


def _np(x) -> np.ndarray:
    if isinstance(x, Tensor):
        return x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def _check_stack(x: np.ndarray, name: str) -> np.ndarray:
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or x.shape[1] != x.shape[2]:
        raise ValueError(f"{name} must have shape (d, d) or (n, d, d); got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def mean_row_max(stack) -> Tensor:
    """How permutation-like each matrix is: the mean over rows of the row's largest entry.

    Args:
        stack: (d, d) or (n, d, d) tensor or array.

    Returns:
        (n,) float64 tensor (a 0-d tensor for one matrix): 1 for a permutation, 1/d for the
        uniform matrix.
    """
    s = _check_stack(_np(stack), "stack")
    out = torch.from_numpy(s.max(axis=2).mean(axis=1))
    return out[0] if _np(stack).ndim == 2 else out


def nearest_permutation(matrix) -> tuple[Tensor, Tensor]:
    """The permutation matrix P maximising Σ_ij P_ij R_ij (Hungarian algorithm via SciPy).

    Among permutations this also minimises ‖R − P‖_F, since ‖P‖_F² = d for all of them.

    Args:
        matrix: (d, d).

    Returns:
        ``(P, columns)``: the (d, d) float tensor P and the (d,) long tensor with
        ``P[i, columns[i]] = 1``.
    """
    m = _np(matrix)
    if m.ndim != 2:
        raise ValueError(f"matrix must have shape (d, d); got {m.shape}")
    m = _check_stack(m, "matrix")[0]
    rows, cols = linear_sum_assignment(m, maximize=True)
    p = np.zeros_like(m)
    p[rows, cols] = 1.0
    return torch.from_numpy(p).float(), torch.from_numpy(cols).long()


def nearest_group_element(matrix, group_matrices) -> tuple[int, float]:
    """The index g minimising ‖R − P_g‖_F over a group's matrices, and that distance.

    Args:
        matrix: (d, d).
        group_matrices: (|G|, d, d), e.g. ``group.regular_representation()`` or
            ``group.grid_representation(k)``.
    """
    m = _check_stack(_np(matrix), "matrix")[0]
    basis = _check_stack(_np(group_matrices), "group_matrices")
    if basis.shape[1:] != m.shape:
        raise ValueError(f"group matrices {basis.shape[1:]} and matrix {m.shape} differ in size")
    dist = np.sqrt(((basis - m) ** 2).sum(axis=(1, 2)))
    g = int(dist.argmin())
    return g, float(dist[g])


def _convex_fit(m: np.ndarray, basis: np.ndarray) -> np.ndarray:
    # Minimise ‖Σ_g w_g B_g − M‖² = wᵀQw − 2cᵀw + const subject to w ≥ 0, Σw = 1 (SLSQP).
    a = basis.reshape(len(basis), -1)  # (|G|, d²)
    q, c = a @ a.T, a @ m.ravel()
    scale = max(float(np.trace(q)) / len(q), 1e-12)  # keeps the objective O(1) for any d
    fun = lambda w: float(w @ q @ w - 2 * c @ w) / scale  # noqa: E731
    jac = lambda w: (2 * q @ w - 2 * c) / scale  # noqa: E731
    n = len(basis)
    res = minimize(fun, np.full(n, 1.0 / n), jac=jac, method="SLSQP", bounds=[(0.0, 1.0)] * n,
                   constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones(n)}],
                   options={"ftol": 1e-14, "maxiter": 1000})
    w = np.clip(res.x, 0.0, None)
    return w / w.sum()


def convex_coefficients(stack, group_matrices) -> Tensor:
    """The paper's metric: each matrix as its best convex combination of the group's matrices.

    Solves, for each R_i, ``min_w ‖R_i − Σ_g w_g P_g‖_F`` subject to ``w ≥ 0`` and
    ``Σ_g w_g = 1`` (constrained least squares, SciPy's SLSQP). A matrix equal to P_h gets
    ``w = e_h``; a mixture ``Σ_g a_g P_g`` gets back ``a`` whenever the P_g are linearly
    independent (true for regular representations and for C4 on a k×k grid, k ≥ 2).

    Args:
        stack: (d, d) or (n, d, d) matrices.
        group_matrices: (|G|, d, d) the group's matrices (any fixed basis works: permutations,
            or interpolated rotations).

    Returns:
        (n, |G|) float64 coefficients, each row non-negative and summing to 1 ((|G|,) for one
        matrix).
    """
    s = _check_stack(_np(stack), "stack")
    basis = _check_stack(_np(group_matrices), "group_matrices")
    if basis.shape[1:] != s.shape[1:]:
        raise ValueError(
            f"group matrices are {basis.shape[1]}×{basis.shape[2]} but the stack holds "
            f"{s.shape[1]}×{s.shape[2]} matrices"
        )
    out = torch.from_numpy(np.stack([_convex_fit(m, basis) for m in s]))
    return out[0] if _np(stack).ndim == 2 else out


@dataclass
class Recovery:
    """How well a learned stack recovers a group (see :func:`recovery`).

    Attributes:
        coefficients: (n, |G|) convex coefficients of each learned matrix.
        element: (n,) the group element with the largest coefficient, per matrix.
        weight: (n,) that largest coefficient.
        row_max: (n,) :func:`mean_row_max` of each matrix.
        covered: the sorted set of group elements some matrix is assigned to.
        element_names: printable names of the group's elements.
    """

    coefficients: Tensor
    element: list[int]
    weight: list[float]
    row_max: list[float]
    covered: list[int]
    element_names: list[str]

    @property
    def min_weight(self) -> float:
        """The smallest top coefficient: ≥ 0.9 means every matrix is ≥ 90 % one element."""
        return min(self.weight)

    def covers(self, elements: Sequence[int]) -> bool:
        """Whether every element in ``elements`` is some matrix's top element."""
        return set(int(e) for e in elements) <= set(self.covered)

    def table(self, row_names: Sequence[str] | None = None) -> str:
        """A printable table: matrix, nearest element, its coefficient, mean row maximum."""
        names = row_names or [f"R_{i}" for i in range(len(self.element))]
        lines = [f"{'matrix':>8} {'element':>8} {'coeff':>6} {'row max':>8}"]
        for name, g, w, r in zip(names, self.element, self.weight, self.row_max):
            lines.append(f"{name:>8} {self.element_names[g]:>8} {w:6.3f} {r:8.3f}")
        return "\n".join(lines)


def recovery(stack, group_matrices, element_names: Sequence[str] | None = None) -> Recovery:
    """Convex coefficients, top element and sharpness of every matrix of a learned stack.

    Args:
        stack: (n, d, d) learned matrices (leave out an anchored identity if it should not
            count).
        group_matrices: (|G|, d, d) the true group's matrices.
        element_names: names of the group's elements (default ``g0, g1, ...``).
    """
    s = _check_stack(_np(stack), "stack")
    coeffs = convex_coefficients(s, group_matrices)  # (n, |G|)
    top = coeffs.max(dim=1)
    names = list(element_names) if element_names is not None else [f"g{i}" for i in range(coeffs.shape[1])]
    element = top.indices.tolist()
    return Recovery(coeffs, element, top.values.tolist(), mean_row_max(s).tolist(),
                    sorted(set(element)), names)


@dataclass
class Closure:
    """Is a set of matrices closed under composition? (see :func:`closure`)

    Attributes:
        nearest: (n, n) for each product R_i R_j, the index k of the closest R_k.
        error: (n, n) the relative distance ‖R_i R_j − R_k‖_F / ‖R_i R_j‖_F to that R_k.
    """

    nearest: Tensor
    error: Tensor

    @property
    def max_error(self) -> float:
        return float(self.error.max())

    def is_closed(self, tol: float = 0.1) -> bool:
        """True when every product lies within relative distance ``tol`` of a member."""
        return self.max_error <= tol


def closure(stack) -> Closure:
    """Composition table of a stack: is every product R_i R_j (close to) some R_k?

    A group's matrices are closed (every product is a member exactly); the first half of the
    cyclic shifts is not (shift 3 ∘ shift 2 = shift 5, which is missing).

    Args:
        stack: (n, d, d).
    """
    s = _check_stack(_np(stack), "stack")
    prod = np.einsum("iab,jbc->ijac", s, s)  # (n, n, d, d)
    dist = np.sqrt(((prod[:, :, None] - s[None, None]) ** 2).sum(axis=(-2, -1)))  # (n, n, n)
    norm = np.sqrt((prod ** 2).sum(axis=(-2, -1)))
    k = dist.argmin(axis=-1)
    err = np.take_along_axis(dist, k[..., None], -1)[..., 0] / np.maximum(norm, 1e-300)
    return Closure(torch.from_numpy(k), torch.from_numpy(err))


def group_equivariance_error(model: Callable[[Tensor], Tensor], x: Tensor, group: FiniteGroup,
                             output: str = "invariant") -> EquivarianceResult:
    """Equivariance error of a model on images under a group acting on the plane.

    Args:
        model: maps (B, C, H, W) images to outputs.
        x: (B, C, H, W) inputs (square images).
        group: a group with a grid action (C4, D4, ...).
        output: ``"invariant"`` (outputs should not change, e.g. logits) or ``"group"``
            (outputs are (..., |G|, H', W') group feature maps that should transform).

    Returns:
        the :class:`~wslib.equivariance.EquivarianceResult` over all group elements.
    """
    if output not in ("invariant", "group"):
        raise ValueError(f"output must be 'invariant' or 'group'; got {output!r}")
    out_action = invariant_action if output == "invariant" else group_feature_action(group)
    return equivariance_error(model, x, image_action(group), out_action, list(range(group.order)))


def rotation_equivariance_error(model: Callable[[Tensor], Tensor], x: Tensor,
                                angles: Sequence[float]) -> EquivarianceResult:
    """Invariance error of a model's outputs under rotations of its input by arbitrary angles.

    For each angle θ: ‖f(rot_θ x) − f(x)‖ / ‖f(x)‖, with rotations by :func:`wslib.data.rotate_images`
    (bilinear, zeros outside). Multiples of 90° are exact symmetries of the grid; other angles
    also blur and crop, so even a perfect C4 model is only approximately invariant there.

    Args:
        model: maps (B, C, H, W) to invariant outputs (e.g. logits).
        x: (B, C, H, W).
        angles: degrees.
    """
    from .data import rotate_images  # data imports groups only; deferred to keep imports light

    def act(images: Tensor, angle: float) -> Tensor:
        return rotate_images(images, float(angle))

    return equivariance_error(model, x, act, invariant_action, list(angles))
