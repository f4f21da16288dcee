"""Toy data with a known group: x = ρ(g) x̂ + ε, with the g of every sample kept.

A learned stack trained on it can be compared with the truth (chapter 4).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import TensorDataset

from ..groups import FiniteGroup, cyclic, interpolated_rotation_matrix

@dataclass
class ToyData:
    """Samples x = ρ(g) x̂_c + ε of templates x̂_c under group elements g, with the truth kept.

    Attributes:
        x: (N, d) signals, or (N, 1, k, k) images (d = k²).
        labels: (N,) int64. Invariant task: the template index c. Equivariant task: the pair
            (c, g) as ``c·|S| + i`` where g = ``sampled[i]`` (for the full group, i = g and
            |S| = |G|), so acting on x by h changes the label to (c, h·g).
        templates: (C, d) the flattened templates x̂_c.
        template_index: (N,) c of each sample.
        elements: (N,) the group element g of each sample (an index into ``group``).
        group: the group the elements come from (its Cayley table).
        representation: (|G|, d, d) the matrices ρ(g) used: permutations for exact actions,
            interpolation matrices for rotations by angles other than multiples of 90°.
        sampled: the group elements the generator drew from (all of them unless partial).
        task: ``"invariant"`` or ``"equivariant"``.
        noise: standard deviation of ε.
    """

    x: Tensor
    labels: Tensor
    templates: Tensor
    template_index: Tensor
    elements: Tensor
    group: FiniteGroup
    representation: Tensor
    sampled: list[int]
    task: str
    noise: float

    @property
    def num_classes(self) -> int:
        c = self.templates.shape[0]
        return c if self.task == "invariant" else c * len(self.sampled)

    def dataset(self) -> TensorDataset:
        """A TensorDataset of (x, label) pairs for :func:`wslib.train.train`."""
        return TensorDataset(self.x, self.labels)

    def split(self, n_test: int) -> tuple["ToyData", "ToyData"]:
        """The first N − n_test samples and the last n_test, as two ToyData."""
        if not 0 < n_test < len(self.labels):
            raise ValueError(f"n_test must be between 1 and {len(self.labels) - 1}; got {n_test}")
        def part(sl: slice) -> "ToyData":
            return ToyData(self.x[sl], self.labels[sl], self.templates, self.template_index[sl],
                           self.elements[sl], self.group, self.representation, self.sampled,
                           self.task, self.noise)
        n = len(self.labels) - n_test
        return part(slice(0, n)), part(slice(n, None))


def _toy(templates: Tensor, group: FiniteGroup, rep: Tensor, n_samples: int,
         elements: Sequence[int] | None, task: str, noise: float, gen: torch.Generator,
         image_side: int | None) -> ToyData:
    if task not in ("invariant", "equivariant"):
        raise ValueError(f"task must be 'invariant' or 'equivariant'; got {task!r}")
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1; got {n_samples}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0; got {noise}")
    sampled = list(range(group.order)) if elements is None else sorted({int(g) for g in elements})
    if not sampled or min(sampled) < 0 or max(sampled) >= group.order:
        raise ValueError(f"elements must be a non-empty subset of 0..{group.order - 1}; got {elements}")
    c = torch.randint(len(templates), (n_samples,), generator=gen)
    i = torch.randint(len(sampled), (n_samples,), generator=gen)
    g = torch.tensor(sampled)[i]
    x = torch.einsum("nij,nj->ni", rep[g], templates[c])
    x = x + noise * torch.randn(x.shape, generator=gen)
    # Equivariant labels index the pair (template, position of g among the sampled elements),
    # so that a stack with one matrix per sampled element can be matched to them.
    labels = c if task == "invariant" else c * len(sampled) + i
    if image_side is not None:
        x = x.view(n_samples, 1, image_side, image_side)
    return ToyData(x, labels, templates, c, g, group, rep, sampled, task, noise)


def shifted_signals(
    n_templates: int = 4,
    length: int = 8,
    n_samples: int = 1024,
    elements: Sequence[int] | None = None,
    task: str = "invariant",
    noise: float = 0.0,
    seed: int = 0,
) -> ToyData:
    """1-D toy data: random signals cyclically shifted by elements of C_length.

    Templates are standard normal vectors; sample i is ``roll(x̂_c, g)`` (the regular
    representation of C_n, ``representation[g] @ x̂ == torch.roll(x̂, g)``) plus Gaussian noise.

    Args:
        n_templates: C, the number of templates (classes of the invariant task).
        length: n, the signal length and group order.
        n_samples: N.
        elements: the shifts to draw from, e.g. ``range(length // 2)`` for the paper's partial
            variant (not closed under composition); ``None`` draws from all n.
        task: ``"invariant"`` (label = template) or ``"equivariant"`` (label = (template, shift)).
        noise: standard deviation of the additive Gaussian noise.
        seed: everything is a function of it.

    Returns:
        a :class:`ToyData` with x of shape (N, n).
    """
    if length < 2:
        raise ValueError(f"length must be >= 2; got {length}")
    gen = torch.Generator().manual_seed(seed)
    group = cyclic(length)
    templates = torch.randn(n_templates, length, generator=gen)
    return _toy(templates, group, group.regular_representation(), n_samples, elements, task,
                noise, gen, None)


def rotated_patterns(
    n_templates: int = 4,
    size: int = 5,
    order: int = 4,
    n_samples: int = 1024,
    elements: Sequence[int] | None = None,
    task: str = "invariant",
    noise: float = 0.0,
    seed: int = 0,
) -> ToyData:
    """2-D toy data: random k×k patterns rotated by elements of C_order.

    For ``order`` 1, 2 or 4 the rotations permute the pixels exactly (``representation`` holds
    the grid permutations of :meth:`.FiniteGroup.grid_representation`); for other orders (e.g. 8)
    they are bilinear interpolations (:func:`.interpolated_rotation_matrix`) and the templates
    are masked to the inscribed disc, so little mass falls off the grid.

    Args:
        n_templates, n_samples, elements, task, noise, seed: as in :func:`shifted_signals`.
        size: k, the side of the patterns.
        order: the number of rotations, by multiples of 360°/order.

    Returns:
        a :class:`ToyData` with x of shape (N, 1, k, k) and (order, k², k²) representation.
    """
    if size < 2:
        raise ValueError(f"size must be >= 2; got {size}")
    if order < 1:
        raise ValueError(f"order must be >= 1; got {order}")
    gen = torch.Generator().manual_seed(seed)
    group = cyclic(order)
    templates = torch.randn(n_templates, size * size, generator=gen)
    if group.has_grid_action():
        rep = group.grid_representation(size)
    else:
        rep = torch.stack([interpolated_rotation_matrix(size, 360.0 * g / order) for g in range(order)])
        r = torch.arange(size) - (size - 1) / 2
        disc = (r.view(-1, 1) ** 2 + r.view(1, -1) ** 2) <= ((size - 1) / 2) ** 2 + 1e-6
        templates = templates * disc.flatten().float()
    return _toy(templates, group, rep, n_samples, elements, task, noise, gen, size)
