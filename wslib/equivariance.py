"""One equivariance checker, used by the tests and shown in the book.

A map f is equivariant to a group G acting on its inputs by A_g and on its outputs by B_g when
f(A_g x) = B_g f(x) for every g. :func:`equivariance_error` measures, for each g, the relative
error ‖f(A_g x) − B_g f(x)‖ / ‖B_g f(x)‖ and reports the worst one;
:func:`assert_equivariant` turns that into a test with a tolerance set by the dtype.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import Tensor

from .groups import FiniteGroup

__all__ = [
    "EquivarianceResult",
    "equivariance_error",
    "assert_equivariant",
    "default_tolerance",
    "image_action",
    "group_feature_action",
    "invariant_action",
]

Action = Callable[[Tensor, int], Tensor]

_TOLERANCES = {torch.float64: 1e-10, torch.float32: 1e-5, torch.float16: 1e-2, torch.bfloat16: 1e-2}


def default_tolerance(dtype: torch.dtype) -> float:
    """Relative tolerance for exact equivariance in ``dtype``: 1e-10 (float64), 1e-5 (float32)."""
    return _TOLERANCES.get(dtype, 1e-5)


@dataclass
class EquivarianceResult:
    """What :func:`equivariance_error` found.

    Attributes:
        errors: relative error per group element tried, in the order given.
        elements: the group elements (or labels) tried.
        worst_element: the element with the largest error.
        max_error: that largest relative error.
    """

    errors: list[float]
    elements: list
    worst_element: object
    max_error: float

    def __str__(self) -> str:
        return f"max relative error {self.max_error:.3g} at element {self.worst_element!r}"


def _relative(a: Tensor, b: Tensor) -> float:
    scale = b.detach().double().norm().clamp_min(torch.finfo(torch.float64).tiny)
    return float((a.detach().double() - b.detach().double()).norm() / scale)


@torch.no_grad()
def equivariance_error(
    fn: Callable[[Tensor], Tensor],
    x: Tensor,
    input_action: Action,
    output_action: Action,
    elements: Sequence,
) -> EquivarianceResult:
    """Relative equivariance error of ``fn`` at input ``x``, for each element of ``elements``.

    Args:
        fn: a layer, model or function of one tensor.
        x: the input.
        input_action: ``(x, g) -> A_g x``.
        output_action: ``(y, g) -> B_g y``.
        elements: the group elements to try (anything the actions accept).

    Returns:
        an :class:`EquivarianceResult`; its ``max_error`` and ``worst_element`` name the worst case.
    """
    y = fn(x)
    errors = [_relative(fn(input_action(x, g)), output_action(y, g)) for g in elements]
    worst = max(range(len(errors)), key=errors.__getitem__)
    return EquivarianceResult(errors, list(elements), elements[worst], errors[worst])


def assert_equivariant(
    fn: Callable[[Tensor], Tensor],
    x: Tensor,
    input_action: Action,
    output_action: Action,
    elements: Sequence,
    rtol: float | None = None,
) -> EquivarianceResult:
    """Raise ``AssertionError`` naming the worst element unless every error is ≤ ``rtol``.

    ``rtol`` defaults to :func:`default_tolerance` of ``x.dtype``. Returns the result on success.
    """
    rtol = default_tolerance(x.dtype) if rtol is None else rtol
    result = equivariance_error(fn, x, input_action, output_action, elements)
    if not result.max_error <= rtol:
        raise AssertionError(f"not equivariant to tolerance {rtol:g}: {result}")
    return result


# --- the actions the library's layers need -----------------------------------------------------


def image_action(group: FiniteGroup) -> Action:
    """g acting on images (..., H, W) by rotating / mirroring the plane."""
    return group.act_on_grid


def group_feature_action(group: FiniteGroup, group_dim: int = -3) -> Action:
    """g acting on group feature maps (..., |G|, H, W): transform the plane *and* apply the
    regular representation to the group axis, (g·f)(h, x) = f(g⁻¹h, g⁻¹x)."""

    def act(y: Tensor, g: int) -> Tensor:
        return group.permute_axis(group.act_on_grid(y, g), g, group_dim)

    return act


def invariant_action(y: Tensor, g) -> Tensor:
    """The trivial action: invariant outputs (e.g. logits) do not change."""
    return y
