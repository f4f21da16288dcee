"""Finite groups as permutations, and their actions on square pixel grids.

A finite group is stored as its Cayley table: ``table[g, h]`` is the index of the product g·h.
Everything else follows from the table: inverses, the regular representation, and -- for the
rotation and reflection groups of the square -- permutation matrices that act on flattened
k×k kernels.

Conventions used throughout the library and the book:

* Elements are integers ``0..n-1`` and ``0`` is always the identity e.
* The (left-)regular representation acts on functions f: G → R by [ρ(g)f](h) = f(g⁻¹h). Its
  matrix P_g moves basis vector e_h to e_{g·h}, i.e. ``P_g[i, h] = 1`` iff ``i == g·h``, so
  ``P_g @ P_h == P_{g·h}``.
* C_n = {r^0, ..., r^{n-1}}: r is a rotation by 360°/n.
  D_n = {r^a s^b}: element index ``a + n·b``; s is a reflection and r^a s^b means "reflect
  b times, then rotate a times".
* On a k×k grid, r (for C4/D4) is ``torch.rot90(x, 1, dims=(-2, -1))`` -- a quarter turn
  counter-clockwise as ``imshow`` draws an array -- and s is ``torch.flip(x, dims=(-1,))``, the
  left-right mirror. Grid permutation matrices act on row-major flattened kernels:
  ``(P_g @ w.flatten()).view(k, k) == act_on_grid(w, g)``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "FiniteGroup",
    "cyclic",
    "dihedral",
    "rotation_stack",
    "shift_twist_stack",
    "interpolated_rotation_matrix",
]


class FiniteGroup:
    """A finite group given by its Cayley table.

    Args:
        name: e.g. ``"C4"``.
        table: (n, n) integer Cayley table, ``table[g, h] = g·h``; element 0 is the identity.
        element_names: n printable names, e.g. ``["e", "r", "r²", "r³"]``.
        grid_action: optional ``(quarter_turns, flips)`` pair per element describing how it moves
            a square grid (see the module docstring); ``None`` for groups without one.
    """

    def __init__(
        self,
        name: str,
        table: Tensor,
        element_names: list[str],
        grid_action: list[tuple[int, int]] | None = None,
    ):
        table = torch.as_tensor(table, dtype=torch.long)
        n = table.shape[0]
        if table.shape != (n, n):
            raise ValueError(f"Cayley table must be square; got {tuple(table.shape)}")
        if len(element_names) != n:
            raise ValueError(f"need {n} element names; got {len(element_names)}")
        self.name = name
        self.table = table
        self.element_names = list(element_names)
        self._grid_action = grid_action
        identity = torch.arange(n)
        if not (torch.equal(table[0], identity) and torch.equal(table[:, 0], identity)):
            raise ValueError("element 0 must be the identity of the Cayley table")
        # g⁻¹ is the unique h with g·h = e.
        self.inverses = (table == 0).long().argmax(dim=1)

    @property
    def order(self) -> int:
        """The number of elements |G|."""
        return self.table.shape[0]

    def __len__(self) -> int:
        return self.order

    def __repr__(self) -> str:
        return f"FiniteGroup({self.name}, order={self.order})"

    def product(self, g: int, h: int) -> int:
        """The index of g·h."""
        return int(self.table[g, h])

    def inverse(self, g: int) -> int:
        """The index of g⁻¹."""
        return int(self.inverses[g])

    def regular_representation(self, dtype: torch.dtype = torch.float32) -> Tensor:
        """(n, n, n) permutation matrices P_g with ``P_g[i, h] = 1`` iff ``i = g·h``.

        ``P[g] @ P[h] == P[g·h]``; ``(P[g] @ f)[i] = f[g⁻¹·i]``.
        """
        n = self.order
        reg = torch.zeros(n, n, n, dtype=dtype)
        g = torch.arange(n).view(n, 1).expand(n, n)
        h = torch.arange(n).view(1, n).expand(n, n)
        reg[g, self.table, h] = 1
        return reg

    def permute_axis(self, x: Tensor, g: int, dim: int) -> Tensor:
        """Apply the regular representation of g along axis ``dim``: ``out[i] = x[g⁻¹·i]``."""
        if x.shape[dim] != self.order:
            raise ValueError(
                f"axis {dim} of x has size {x.shape[dim]}, but {self.name} has {self.order} elements"
            )
        index = self.table[self.inverse(g)].to(x.device)
        return x.index_select(dim, index)

    # --- the action on square grids -------------------------------------------------------

    def has_grid_action(self) -> bool:
        return self._grid_action is not None

    def act_on_grid(self, x: Tensor, g: int) -> Tensor:
        """Transform the last two (square) axes of ``x`` by element g (rotations / flips)."""
        if self._grid_action is None:
            raise ValueError(
                f"{self.name} does not permute the pixels of a square grid; only rotations by "
                "multiples of 90° and reflections do (use interpolated_rotation_matrix for others)"
            )
        if x.dim() < 2 or x.shape[-1] != x.shape[-2]:
            raise ValueError(f"act_on_grid needs square trailing axes; got {tuple(x.shape)}")
        quarter_turns, flips = self._grid_action[g]
        if flips:
            x = torch.flip(x, dims=(-1,))
        return torch.rot90(x, quarter_turns, dims=(-2, -1))

    def grid_representation(self, kernel_size: int, dtype: torch.dtype = torch.float32) -> Tensor:
        """(n, k², k²) permutation matrices of the group acting on row-major flattened k×k grids.

        ``(out[g] @ w.flatten()).view(k, k) == act_on_grid(w, g)`` for every k×k tensor w.
        """
        k = _check_kernel_size(kernel_size)
        pixels = torch.arange(k * k).view(k, k)
        mats = torch.zeros(self.order, k * k, k * k, dtype=dtype)
        for g in range(self.order):
            # Output pixel i takes its value from input pixel source[i].
            source = self.act_on_grid(pixels, g).flatten()
            mats[g, torch.arange(k * k), source] = 1
        return mats

    def shift_twist_representation(
        self, kernel_size: int, dtype: torch.dtype = torch.float32
    ) -> Tensor:
        """(n, n·k², n·k²): the regular representation acting on (group × k × k) kernels.

        ``out[g] = P_g ⊗ Q_g`` with P_g the regular representation (shifting the input-group
        axis) and Q_g the grid permutation ("shift-twist"); the index of entry (h, pixel) is
        ``h·k² + pixel`` (input-group-major, then row-major pixels), the layout of
        :class:`wslib.nn.GroupConv2d` kernels.
        """
        reg = self.regular_representation(dtype)
        grid = self.grid_representation(kernel_size, dtype)
        return torch.stack([torch.kron(reg[g], grid[g]) for g in range(self.order)])


def _check_kernel_size(kernel_size: int) -> int:
    if not isinstance(kernel_size, int) or kernel_size < 1:
        raise ValueError(f"kernel_size must be a positive int; got {kernel_size!r}")
    return kernel_size


def _superscript(a: int) -> str:
    return "" if a == 1 else str(a).translate(str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹"))


def cyclic(n: int) -> FiniteGroup:
    """The cyclic group C_n of rotations by multiples of 360°/n (element a = r^a).

    C1, C2 and C4 act on square grids; other orders only as abstract groups.
    """
    if n < 1:
        raise ValueError(f"group order must be >= 1; got {n}")
    a = torch.arange(n)
    table = (a.view(n, 1) + a.view(1, n)) % n
    names = ["e"] + [f"r{_superscript(i)}" for i in range(1, n)]
    grid = [(i * 4 // n, 0) for i in range(n)] if 4 % n == 0 else None
    return FiniteGroup(f"C{n}", table, names, grid)


def dihedral(n: int) -> FiniteGroup:
    """The dihedral group D_n of 2n rotations and reflections; element ``a + n·b`` = r^a s^b.

    Multiplication: (r^a s^b)(r^c s^d) = r^(a + (-1)^b c) s^(b+d). D1, D2 and D4 act on
    square grids.
    """
    if n < 1:
        raise ValueError(f"group order parameter must be >= 1; got {n}")
    idx = torch.arange(2 * n)
    a, b = idx % n, idx // n
    sign = 1 - 2 * b.view(-1, 1)  # (-1)^b of the left factor
    rot = (a.view(-1, 1) + sign * a.view(1, -1)) % n
    ref = (b.view(-1, 1) + b.view(1, -1)) % 2
    table = rot + n * ref
    names = []
    for i in range(2 * n):
        r = "" if a[i] == 0 else f"r{_superscript(int(a[i]))}"
        s = "s" if b[i] else ""
        names.append(r + s or "e")
    grid = [(int(a[i]) * 4 // n, int(b[i])) for i in range(2 * n)] if 4 % n == 0 else None
    return FiniteGroup(f"D{n}", table, names, grid)


def _square_group(order: int, flips: bool) -> FiniteGroup:
    if order not in (1, 2, 4):
        raise ValueError(
            f"only rotations by multiples of 90° permute a pixel grid exactly, so order must be "
            f"1, 2 or 4; got {order} (use interpolated_rotation_matrix for other angles)"
        )
    return dihedral(order) if flips else cyclic(order)


def rotation_stack(kernel_size: int, order: int = 4, flips: bool = False) -> Tensor:
    """Exact permutation matrices rotating (and, with ``flips``, mirroring) a k×k kernel.

    Returns (order, k², k²) -- or (2·order, k², k²) with flips, the group D_order -- acting on
    row-major flattened kernels: ``(stack[r] @ w.flatten()).view(k, k)`` equals
    ``torch.rot90(w, r * 4 // order, dims=(-2, -1))``. This is the representation of a lifting
    layer of an exact G-CNN.
    """
    return _square_group(order, flips).grid_representation(kernel_size)


def shift_twist_stack(kernel_size: int, order: int = 4, flips: bool = False) -> Tensor:
    """The shift-twist representation a group-conv layer of an exact C_order (or D_order) G-CNN uses.

    Returns (|G|, |G|·k², |G|·k²): element g cyclically shifts the input-group axis (regular
    representation) and rotates/mirrors every k×k slice, in the input-group-major layout of
    :class:`wslib.nn.GroupConv2d`. See :meth:`FiniteGroup.shift_twist_representation`.
    """
    return _square_group(order, flips).shift_twist_representation(kernel_size)


def interpolated_rotation_matrix(
    kernel_size: int, angle: float, dtype: torch.dtype = torch.float32
) -> Tensor:
    """(k², k²) matrix rotating a row-major flattened k×k kernel by ``angle`` degrees.

    Rotation is about the grid centre, in the same sense as :func:`rotation_stack` (90° gives
    its ``stack[1]`` up to rounding), with bilinear interpolation and zeros outside the grid.
    For angles that are not multiples of 90° the result is *not* a permutation: it blurs each
    pixel over up to four neighbours and loses mass near the corners.
    """
    k = _check_kernel_size(kernel_size)
    theta = math.radians(angle)
    c, s = math.cos(theta), math.sin(theta)
    # affine_grid maps each *output* location (x, y) ∈ [-1, 1]² to the input location sampled.
    # Sampling at the output point rotated by -θ rotates the image by +θ (x right, y down).
    affine = torch.tensor([[c, -s, 0.0], [s, c, 0.0]], dtype=torch.float64).unsqueeze(0)
    basis = torch.eye(k * k, dtype=torch.float64).view(k * k, 1, k, k)
    grid = F.affine_grid(affine.expand(k * k, 2, 3), [k * k, 1, k, k], align_corners=True)
    moved = F.grid_sample(basis, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    # Column j is the image of basis pixel j.
    return moved.view(k * k, k * k).T.contiguous().to(dtype)
