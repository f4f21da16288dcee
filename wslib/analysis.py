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
  :func:`group_equivariance_error`, :func:`rotation_equivariance_error`;
* the nearest permutation of every matrix -- :func:`snap`, and how far it was -- :func:`snap_gap`;
  which group the snapped matrices generate, by name -- :func:`identify_group`; and which
  rotations / reflections of a k×k grid they are -- :func:`grid_names`.

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
from .groups import FiniteGroup, cyclic, dihedral

__all__ = [
    "mean_row_max",
    "nearest_permutation",
    "nearest_group_element",
    "convex_coefficients",
    "Recovery",
    "recovery",
    "RowAgreement",
    "row_agreement",
    "Closure",
    "closure",
    "group_equivariance_error",
    "rotation_equivariance_error",
    "snap",
    "snap_gap",
    "GroupReport",
    "identify_group",
    "GridNames",
    "grid_names",
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
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} is empty: give at least one (d, d) matrix with d >= 1")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def mean_row_max(stack) -> Tensor:
    """How permutation-like each matrix is: the mean over rows of the row's largest entry.

    Args:
        stack: (d, d) or (n, d, d) tensor or array.

    Returns:
        (n,) float64 tensor (a 0-d tensor for one matrix); 1 for a permutation, 1/d for the
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
        """The smallest top coefficient; ≥ 0.9 means every matrix is ≥ 90 % one element."""
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
class RowAgreement:
    """Which group permutation each matrix's row maxima follow (see :func:`row_agreement`).

    Attributes:
        element: (n,) per matrix, the group element whose permutation the most rows agree with.
        rows_agreeing: (n,) how many of the d rows agree with it (d: a permutation of that
            element; about d/|G| by chance).
        rows: d, the number of rows of each matrix.
        element_names: printable names of the group's elements.
    """

    element: list[int]
    rows_agreeing: list[int]
    rows: int
    element_names: list[str]

    @property
    def names(self) -> list[str]:
        """The name of each matrix's element."""
        return [self.element_names[g] for g in self.element]


def row_agreement(stack, group_matrices, element_names: Sequence[str] | None = None) -> RowAgreement:
    """Read each learned matrix as the permutation of its row maxima and compare with a group.

    Row i of a matrix "agrees" with a group element g when its largest entry sits where P_g has
    its 1 (the column P_g sends row i to). For each matrix this finds the element the most rows
    agree with (ties go to the first in ``group_matrices``' order) and counts those rows. Unlike
    the convex weights of :func:`recovery`, the count ignores how sharp a row is: it measures
    how far the matrix's *pattern* has become the group element's, which is what a plot of the
    matrix shows. Comparing the lifting stack of a C4 layer with the three grid rotations
    ``rotation_stack(5)[1:]`` is how the published animation of the paper's run is read.

    Args:
        stack: (n, d, d) or (d, d) matrices.
        group_matrices: (|G|, d, d) permutation matrices, e.g. ``rotation_stack(5)[1:]``.
        element_names: names of the group's elements (default ``g0, g1, ...``).
    """
    s = _check_stack(_np(stack), "stack")
    basis = _check_stack(_np(group_matrices), "group_matrices")
    if basis.shape[1:] != s.shape[1:]:
        raise ValueError(f"group matrices {basis.shape[1:]} and stack matrices {s.shape[1:]} "
                         "differ in size")
    if not (np.isin(basis, (0.0, 1.0)).all() and (basis.sum(axis=1) == 1).all()
            and (basis.sum(axis=2) == 1).all()):
        raise ValueError("group_matrices must be permutation matrices (0/1, one 1 per row and "
                         "per column)")
    names = list(element_names) if element_names is not None else [f"g{i}" for i in range(len(basis))]
    if len(names) != len(basis):
        raise ValueError(f"{len(names)} element names for {len(basis)} group matrices")
    agree = (s.argmax(axis=2)[:, None, :] == basis.argmax(axis=2)[None]).sum(axis=2)  # (n, |G|)
    element = agree.argmax(axis=1)
    return RowAgreement(element.tolist(), agree.max(axis=1).tolist(), s.shape[1], names)


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


# --- from a learned stack to a named group ------------------------------------------------------


def _as_stack_tensor(stack, name: str) -> tuple[Tensor, bool]:
    """(n, d, d) float tensor of ``stack`` and whether the input was one (d, d) matrix."""
    t = torch.as_tensor(stack)
    if not t.is_floating_point():
        t = t.float()
    single = t.dim() == 2
    if single:
        t = t.unsqueeze(0)
    if t.dim() != 3 or t.shape[1] != t.shape[2]:
        raise ValueError(f"{name} must have shape (d, d) or (n, d, d) with square matrices; "
                         f"got {tuple(torch.as_tensor(stack).shape)}")
    if t.numel() == 0:
        raise ValueError(f"{name} is empty: give at least one (d, d) matrix with d >= 1")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return t, single


def _check_doubly_stochastic(s: np.ndarray, tol: float, name: str) -> None:
    # Learned stacks come out of a finite number of Sinkhorn steps, which end on the columns: at
    # temperature 1 the rows are off by a few 1e-2, at a low temperature (a hardened stack) by a
    # few tenths. Raw logits or kernels passed by mistake are off by far more.
    worst = max(float(np.abs(s.sum(axis=1) - 1).max(initial=0.0)),
                float(np.abs(s.sum(axis=2) - 1).max(initial=0.0)),
                float(-s.min(initial=0.0)))
    if worst > tol:
        raise ValueError(
            f"{name} is not close to doubly stochastic: a row or column sum is off by, or an "
            f"entry is negative by, {worst:.3g} > tol={tol:g} (snap expects Sinkhorn output)")


def snap(stack, tol: float = 0.5) -> Tensor:
    """Replace each doubly stochastic matrix by its nearest permutation matrix.

    Each R_i is matched to the permutation P maximising Σ_ab P_ab (R_i)_ab (the Hungarian
    algorithm, as in :func:`nearest_permutation`), which also minimises ‖R_i − P‖_F. An exact
    permutation is returned unchanged, so an anchored identity stays the identity.

    Args:
        stack: (n, d, d) or (d, d) matrices, each within ``tol`` of doubly stochastic (row and
            column sums within ``tol`` of 1, no entry below −tol).
        tol: how far from doubly stochastic an input may be (the default admits stacks
            hardened at a low Sinkhorn temperature, whose row sums 20 iterations leave ~0.3 off).

    Returns:
        permutation matrices of the input's shape, device and (floating) dtype.

    Raises:
        ValueError: the matrices are not square, not finite, or not close to doubly stochastic.
    """
    t, single = _as_stack_tensor(stack, "stack")
    s = _np(t)
    _check_doubly_stochastic(s, tol, "stack")
    out = np.zeros_like(s)
    for i, m in enumerate(s):
        rows, cols = linear_sum_assignment(m, maximize=True)
        out[i, rows, cols] = 1.0
    result = torch.from_numpy(out).to(dtype=t.dtype, device=t.device)
    return result[0] if single else result


def snap_gap(stack, tol: float = 0.5) -> Tensor:
    """How far each matrix is from its snapped permutation: ‖R − P‖_F / √d.

    0 for a permutation; (d − 1)/d under the square root for the uniform matrix (≈ 1); two
    different permutations are up to √2 apart.

    Args:
        stack: (n, d, d) or (d, d), as for :func:`snap`.
        tol: passed to :func:`snap`.

    Returns:
        (n,) float64 tensor (a 0-d tensor for one matrix).
    """
    t, single = _as_stack_tensor(stack, "stack")
    s = _np(t)
    p = _np(snap(t, tol))
    gap = torch.from_numpy(np.sqrt(((s - p) ** 2).sum(axis=(1, 2)) / s.shape[1]))
    return gap[0] if single else gap


def _permutation_columns(stack, name: str) -> np.ndarray:
    """(n, d) integer array c with P_i[a, c[i, a]] = 1, after checking P_i are permutations."""
    t, _ = _as_stack_tensor(stack, name)
    s = _np(t)
    r = np.round(s)
    binary = np.abs(s - r).max(initial=0.0) <= 1e-6 and set(np.unique(r)) <= {0.0, 1.0}
    if not binary or not (r.sum(axis=1) == 1).all() or not (r.sum(axis=2) == 1).all():
        raise ValueError(f"{name} must hold permutation matrices (one 1 in every row and column, "
                         "0 elsewhere); snap learned matrices first with wslib.analysis.snap")
    return np.round(s).argmax(axis=2)


_GROUP_WORDS = {"C": "the cyclic group", "D": "the dihedral group"}


@dataclass
class GroupReport:
    """Which group a set of permutation matrices generates (see :func:`identify_group`).

    Attributes:
        order: |G|, the number of elements of the generated group.
        name: ``"trivial"``, ``"C<n>"``, ``"D<n>"`` (D2 is the Klein four-group C2×C2) or
            ``"other (order n)"``.
        closed: whether the given matrices plus the identity are already closed under
            composition (then they *are* the group, possibly with repeats).
        outside: ``(i, j, g)`` for every product M_i M_j of two given matrices that is not
            among them (nor the identity): it is element g of the group.
        added: the elements of the group that are neither given nor the identity, i.e. what
            closing the set adds.
        group: the generated group as a :class:`~wslib.groups.FiniteGroup` (Cayley table,
            element names ``e, r, r², ...`` for C_n, ``r^a s^b`` for D_n, ``g1, g2, ...`` else).
        matrices: (|G|, d, d) float32 permutation matrix of each element, in the group's order,
            so ``matrices[g] @ matrices[h] == matrices[group.product(g, h)]``.
        slots: for each given matrix, its element of the group.
        labels: printable names of the given matrices (``R0, R1, ...`` unless given).
        generators: the elements that define the name, e.g. ``{"r": 1}`` or ``{"r": 1, "s": 4}``.
    """

    order: int
    name: str
    closed: bool
    outside: list[tuple[int, int, int]]
    added: list[int]
    group: FiniteGroup
    matrices: Tensor
    slots: list[int]
    labels: list[str]
    generators: dict[str, int]

    @property
    def slot_names(self) -> list[str]:
        """The group element name of each given matrix, e.g. ``["r", "r²", "r³"]``."""
        return [self.group.element_names[g] for g in self.slots]

    def describe(self) -> str:
        """The name in words, e.g. "C4, the cyclic group of order 4"."""
        if self.name == "trivial":
            return "the trivial group (the identity alone)"
        if self.name == "D2":
            return "D2, the Klein four-group C2×C2 (three elements of order 2)"
        if self.name[0] in _GROUP_WORDS and self.name[1:].isdigit():
            return f"{self.name}, {_GROUP_WORDS[self.name[0]]} of order {self.order}"
        return f"a group of order {self.order} that is neither cyclic nor dihedral"

    def __str__(self) -> str:
        names = self.group.element_names
        n = len(self.labels)
        gens = []
        for key, g in self.generators.items():
            given = [lab for lab, x in zip(self.labels, self.slots) if x == g]
            where = given[0] if given else "a product of them"
            order = _element_order(self.group.table.numpy(), g)
            gens.append(f"{key} = {where} (order {order})")
        relation = " with s·r·s = r⁻¹" if "s" in self.generators else ""
        lines = [f"{n} matri{'ces' if n != 1 else 'x'} ({', '.join(self.labels)}) and the identity "
                 f"generate a group of order {self.order}: {self.describe()}"
                 + (f", generated by {' and '.join(gens)}{relation}." if gens else ".")]
        lines.append("Slots: "
                     + ", ".join(f"{lab} = {names[g]}" for lab, g in zip(self.labels, self.slots))
                     + ".")
        repeats = {}
        for lab, g in zip(self.labels, self.slots):
            repeats.setdefault(g, []).append(lab)
        for g, labs in repeats.items():
            if len(labs) > 1:
                lines.append(f"{' and '.join(labs)} are the same permutation ({names[g]}).")
        if self.closed:
            lines.append("The set is closed under composition: it is the whole group.")
        else:
            i, j, g = self.outside[0]
            more = len(self.outside) - 1
            lines.append(f"The set is NOT closed under composition: "
                         f"{self.labels[i]}·{self.labels[j]} = {names[g]} is not in it"
                         + (f" (nor are {more} more products)." if more else ".")
                         + f" Closing it adds {len(self.added)} element"
                         f"{'s' if len(self.added) != 1 else ''}: "
                         + ", ".join(names[g] for g in self.added[:12])
                         + (", ..." if len(self.added) > 12 else "") + ".")
        return "\n".join(lines)


def _element_order(table: np.ndarray, g: int) -> int:
    k, x = 1, g
    while x != 0:
        x, k = int(table[x, g]), k + 1
    return k


def _powers(table: np.ndarray, g: int) -> list[int]:
    out, x = [0], g
    while x != 0:
        out.append(x)
        x = int(table[x, g])
    return out


def identify_group(perms, names: Sequence[str] | None = None, max_order: int = 1000) -> GroupReport:
    """Close a set of permutation matrices under composition and name the group they generate.

    The identity is always included (an anchored identity may or may not be among ``perms``).
    The name is decided from element orders and relations, not from the order alone: the group
    is C_n when some element has order n = |G|; D_m when |G| = 2m and there are r of order m
    and s ∉ ⟨r⟩ with s² = e and s r s = r⁻¹ (so C4 and the Klein four-group D2 = C2×C2 come
    out apart); ``"other (order n)"`` otherwise. The generators are taken among the given matrices
    first, in their order, so a stack whose first matrix is the quarter turn names it r.

    Args:
        perms: (n, d, d) or (d, d) permutation matrices (e.g. ``snap(stack)``).
        names: a printable label for each given matrix (default ``R0, R1, ...``).
        max_order: stop with a ``ValueError`` once the generated group has more elements.

    Returns:
        a :class:`GroupReport`; ``print(report)`` explains it in words.

    Raises:
        ValueError: no matrices, or not permutation matrices; wrong number of names; the group
            has more than ``max_order`` elements.
    """
    cols = _permutation_columns(perms, "perms")
    n, d = cols.shape
    labels = list(names) if names is not None else [f"R{i}" for i in range(n)]
    if len(labels) != n:
        raise ValueError(f"got {len(labels)} names for {n} matrices")
    if max_order < 1:
        raise ValueError(f"max_order must be >= 1; got {max_order}")
    # As permutations, M_a M_b has columns c_b[c_a]: (M_a M_b)[i, :] is row c_a[i] of M_b.
    elements = [np.arange(d)]
    index = {elements[0].tobytes(): 0}
    gens = []
    for c in cols:
        key = c.tobytes()
        if key not in index:
            index[key] = len(elements)
            elements.append(c)
        gens.append(c)
    too_big = ValueError(
        f"the matrices generate a group with more than max_order={max_order} elements (they "
        f"permute {d} points); it is not a small symmetry group -- raise max_order to keep "
        "closing it")
    if len(elements) > max_order:
        raise too_big
    head = 0
    while head < len(elements):  # breadth-first: right-multiply every element by every generator
        e = elements[head]
        head += 1
        for g in gens:
            prod = g[e]
            key = prod.tobytes()
            if key not in index:
                if len(elements) >= max_order:
                    raise too_big
                index[key] = len(elements)
                elements.append(prod)
    order = len(elements)
    arr = np.stack(elements)  # (|G|, d)
    table = np.empty((order, order), dtype=np.int64)
    for a in range(order):
        prods = arr[:, arr[a]]  # row b: the columns of M_a M_b
        table[a] = [index[p.tobytes()] for p in prods]
    bfs_slots = [index[c.tobytes()] for c in cols]
    orders = [_element_order(table, g) for g in range(order)]
    preferred = list(dict.fromkeys(bfs_slots + list(range(order))))  # given first, in order

    name, generators, new_order = f"other (order {order})", {}, list(range(order))
    if order == 1:
        name = "trivial"
    elif (r := next((g for g in preferred if orders[g] == order), None)) is not None:
        name, generators, new_order = f"C{order}", {"r": r}, _powers(table, r)
    elif order % 2 == 0 and order >= 4:
        m = order // 2
        inv = [int(np.argmax(table[g] == 0)) for g in range(order)]
        for r in (g for g in preferred if orders[g] == m):
            rot = _powers(table, r)
            s = next((g for g in preferred if g not in rot and orders[g] == 2
                      and table[table[g, r], g] == inv[r]), None)
            if s is not None:
                # Element a + m·b is r^a s^b, the order of wslib.groups.dihedral(m).
                new_order = rot + [int(table[x, s]) for x in rot]
                name, generators = f"D{m}", {"r": r, "s": s}
                break
    # Relabel the elements so that the Cayley table is the standard one of the named group.
    relabel = np.empty(order, dtype=np.int64)
    relabel[new_order] = np.arange(order)
    table = relabel[table[np.ix_(new_order, new_order)]]
    if name.startswith("C"):
        elem_names = cyclic(order).element_names
    elif name.startswith("D"):
        elem_names = dihedral(order // 2).element_names
    else:
        elem_names = ["e"] + [f"g{i}" for i in range(1, order)]
    group = FiniteGroup(name, torch.from_numpy(table), elem_names)
    mats = torch.zeros(order, d, d)
    for new, old in enumerate(new_order):
        mats[new, torch.arange(d), torch.from_numpy(arr[old])] = 1.0
    slots = [int(relabel[g]) for g in bfs_slots]
    members = {0, *slots}
    outside = [(i, j, int(table[slots[i], slots[j]])) for i in range(n) for j in range(n)
               if int(table[slots[i], slots[j]]) not in members]
    added = [g for g in range(order) if g not in members]
    return GroupReport(order=order, name=name, closed=not outside, outside=outside, added=added,
                       group=group, matrices=mats, slots=slots, labels=labels,
                       generators={k: int(relabel[v]) for k, v in generators.items()})


GRID_ELEMENT_NAMES = ["e", "r90", "r180", "r270", "s", "r90·s", "r180·s", "r270·s"]


@dataclass
class GridNames:
    """How the elements of a :class:`GroupReport` act on a k×k grid (see :func:`grid_names`).

    Attributes:
        kernel_size: k.
        slots: for each given matrix, its name as a symmetry of the grid (``"r90"``: a quarter
            turn counter-clockwise as ``imshow`` draws it; ``"s"``: the left-right mirror;
            ``"r90·s"``: mirror, then turn), or ``None`` when it is none of the 8.
        elements: the same for every element of the generated group.
        labels: the given matrices' labels.
    """

    kernel_size: int
    slots: list[str | None]
    elements: list[str | None]
    labels: list[str]

    @property
    def exact(self) -> bool:
        """True when every element is a rotation or reflection of the grid."""
        return all(e is not None for e in self.elements)

    def __str__(self) -> str:
        k = self.kernel_size
        named = ", ".join(f"{lab} = {s if s is not None else '?'}"
                          for lab, s in zip(self.labels, self.slots))
        if self.exact:
            return f"{named}: exactly rotations/reflections of the {k}×{k} grid."
        bad = sum(e is None for e in self.elements)
        return (f"{named}: NOT the grid's symmetries ({bad} of the group's {len(self.elements)} "
                f"elements are no rotation or reflection of the {k}×{k} grid).")


def grid_names(report: GroupReport, kernel_size: int) -> GridNames:
    """Name the elements of a :class:`GroupReport` as rotations / reflections of a k×k grid.

    Compares every element's matrix with the 8 permutations by which the dihedral group D4
    moves the pixels of a row-major flattened k×k grid (``dihedral(4).grid_representation(k)``).

    Args:
        report: from :func:`identify_group` on (n, k², k²) matrices.
        kernel_size: k.

    Raises:
        ValueError: the matrices are not k²×k².
    """
    k = kernel_size
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"kernel_size must be a positive int; got {k!r}")
    d = report.matrices.shape[-1]
    if d != k * k:
        raise ValueError(f"the report's matrices are {d}×{d}, not the {k * k}×{k * k} of a "
                         f"{k}×{k} grid")
    grid = dihedral(4).grid_representation(k)
    found: list[str | None] = []
    for m in report.matrices:
        hit = [i for i in range(8) if torch.equal(grid[i], m)]
        found.append(GRID_ELEMENT_NAMES[hit[0]] if hit else None)  # k = 1: every element is e
    return GridNames(k, [found[g] for g in report.slots], found, list(report.labels))
