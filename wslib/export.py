"""From a learned weight-sharing network to an exact one.

A trained WSCNN holds soft (doubly stochastic) stacks. :func:`to_exact` returns a copy in which
every :class:`~wslib.nn.LearnedRepresentation` is replaced by a
:class:`~wslib.nn.FixedRepresentation` of permutation matrices: by default each matrix's nearest
permutation (:func:`wslib.analysis.snap`), or, given a group, each matrix's nearest element of
that group's action (rotations of the grid in a lifting layer, shift-twists in a group layer).
The copy has no Sinkhorn and no representation parameters left; it is an exact G-CNN exactly
when its stacks are a group acting consistently in every layer, which
:func:`wslib.analysis.group_equivariance_error` checks.
"""
from __future__ import annotations

import copy
import time
from typing import Callable

import torch
from torch import Tensor, nn

from .analysis import nearest_group_element, snap
from .groups import FiniteGroup
from .nn import FixedRepresentation, GroupConv2d, LearnedRepresentation, LiftingConv2d

__all__ = ["to_exact", "forward_time"]


def _group_candidates(parent: nn.Module, rep: LearnedRepresentation, group: FiniteGroup) -> Tensor:
    """(|G|, d, d): the group's matrices for the layer that holds ``rep``."""
    if not group.has_grid_action():
        raise ValueError(f"{group.name} does not act on a pixel grid; only C1, C2, C4, D1, D2 "
                         "and D4 do")
    if isinstance(parent, LiftingConv2d):
        return group.grid_representation(parent.kernel_size)
    if isinstance(parent, GroupConv2d):
        if group.order != rep.size:
            raise ValueError(f"a group layer with a stack of {rep.size} matrices cannot hold the "
                             f"shift-twist of {group.name}, which has {group.order} elements")
        return group.shift_twist_representation(parent.kernel_size)
    raise ValueError(f"snapping to a group needs the stack inside a LiftingConv2d or GroupConv2d; "
                     f"{type(parent).__name__} holds one")


@torch.no_grad()
def _exact_stack(parent: nn.Module, rep: LearnedRepresentation, group: FiniteGroup | None,
                 tol: float) -> Tensor:
    stack = rep()  # (|H|, d, d), identity first when anchored
    if group is None:
        return snap(stack, tol)
    snap(stack, tol)  # the same input checks as the default path
    candidates = _group_candidates(parent, rep, group)
    picks = [nearest_group_element(m, candidates)[0] for m in stack]
    return candidates[picks].to(dtype=stack.dtype, device=stack.device)


def to_exact(model: nn.Module, group: FiniteGroup | None = None, tol: float = 0.5) -> nn.Module:
    """A copy of ``model`` whose learned stacks are replaced by fixed permutation stacks.

    Every :class:`~wslib.nn.LearnedRepresentation` (|H| matrices, d×d) becomes a
    :class:`~wslib.nn.FixedRepresentation` of the same shape: with ``group=None`` each matrix
    snapped to its nearest permutation (:func:`~wslib.analysis.snap`; an anchored identity
    stays the identity); with a ``group`` (e.g. ``cyclic(4)``) each matrix replaced by the
    nearest of the group's matrices for its layer -- ``group.grid_representation(k)`` in a
    :class:`~wslib.nn.LiftingConv2d`, ``group.shift_twist_representation(k)`` in a
    :class:`~wslib.nn.GroupConv2d`. ``model`` itself is not changed; the copy keeps its
    device, dtype, kernels, norms and mode, and its state dict has the keys of the matching
    G-CNN (``representation.stack`` buffers instead of ``representation.logits``).

    The copy is exactly equivariant when the stacks form a group acting on the grid in the
    lifting layer and every group layer holds the shift-twist of the *same* labelling; snapped
    stacks need not (check with :func:`wslib.analysis.group_equivariance_error`).

    Args:
        model: any module containing learned stacks (a WSCNN, a hybrid, a CIFAR ResNet, ...).
        group: snap to this group's elements instead of to arbitrary permutations.
        tol: how far from doubly stochastic a learned matrix may be (see ``snap``).

    Raises:
        ValueError: the model has no learned stack; a stack is not close to doubly stochastic;
            ``group`` does not fit a layer.
    """
    found = [(parent, name, child) for parent in model.modules()
             for name, child in parent.named_children() if isinstance(child, LearnedRepresentation)]
    if not found:
        raise ValueError(f"{type(model).__name__} has no LearnedRepresentation to make exact "
                         "(it is already a fixed-stack model, or not a weight-sharing one)")
    stacks = [_exact_stack(parent, child, group, tol) for parent, _, child in found]
    exact = copy.deepcopy(model)
    memo = {id(m): m2 for m, m2 in zip(model.modules(), exact.modules())}
    for (parent, name, _), stack in zip(found, stacks):
        setattr(memo[id(parent)], name, FixedRepresentation(stack))
    for module in exact.modules():
        if hasattr(module, "_cache"):
            module._cache = None  # the expanded kernels of the learned stacks are stale
    return exact


@torch.no_grad()
def forward_time(model: nn.Module, x: Tensor, repeats: int = 10, cached: bool = False,
                 clock: Callable[[], float] = time.perf_counter) -> float:
    """Median time in seconds of one inference forward pass ``model(x)``.

    Weight-sharing layers build their kernels from the stack (Sinkhorn for a learned one) and
    keep them while in eval mode without gradients. ``cached=False`` times a pass that rebuilds
    them (the cost of every training step, or of inference without the cache); ``cached=True``
    times the reuse, which is one plain ``conv2d`` per layer for any stack. The model is put in
    eval mode and left there.

    Args:
        model: maps x to outputs.
        x: one input batch, e.g. (B, 1, 28, 28).
        repeats: timed passes (after one untimed warm-up).
        cached: reuse the expanded kernels between passes.
        clock: seconds as a float; wall time by default. On a CPU shared with other work,
            ``time.thread_time`` (the CPU time of this thread; with one torch thread all the
            computation runs in it) is not inflated by the other processes.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1; got {repeats}")
    model.eval()
    model(x)  # warm-up (and, when cached, fills the kernel cache)
    times = []
    for _ in range(repeats):
        if not cached:
            model.eval()  # train(False) drops every layer's cached kernel
        if x.is_cuda:
            torch.cuda.synchronize(x.device)
        t0 = clock()
        model(x)
        if x.is_cuda:
            torch.cuda.synchronize(x.device)
        times.append(clock() - t0)
    return float(torch.tensor(times).median())
