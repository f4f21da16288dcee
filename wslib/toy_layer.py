"""The toy problems' model (chapter 4): one weight-sharing layer whose kernel covers the whole
signal, and the reconstruction objective it is trained with.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor, nn

from . import _validate as _check


class SharedKernelLayer(nn.Module):
    """One weight-sharing layer on flattened signals: C base kernels, each transformed by |H| matrices.

    The kernel stack is ``K[c, g] = R_g θ_c`` (the same weight sharing as
    :class:`~wslib.nn.LiftingConv2d`, but the kernel covers the whole signal, so there is no
    spatial sliding). The response of sample x to kernel (c, g) is ``<K[c, g], x>``; the
    logits are those responses, pooled over g for the invariant task (one logit per template)
    or kept for the equivariant task (one logit per (template, element)).

    Args:
        representation: a module returning an (|H|, d, d) stack, fixed or learned.
        n_templates: C.
        task: ``"invariant"`` (logits (B, C): log-sum-exp over g) or ``"equivariant"``
            (logits (B, C·|H|), index c·|H| + g).

    Input: (B, d) or (B, 1, k, k) with d = k².
    """

    def __init__(self, representation: nn.Module, n_templates: int, task: str = "invariant"):
        super().__init__()
        if task not in ("invariant", "equivariant"):
            raise ValueError(f"task must be 'invariant' or 'equivariant'; got {task!r}")
        n_templates = _check.integer("n_templates", n_templates, 1)
        self.representation, self.task = representation, task
        self.weight = nn.Parameter(torch.randn(n_templates, representation.dim) / math.sqrt(representation.dim))

    def kernel_stack(self) -> Tensor:
        """(C, |H|, d): every base kernel transformed by every matrix of the stack."""
        return torch.einsum("gde,ce->cgd", self.representation(), self.weight)

    def _flat(self, x: Tensor) -> Tensor:
        flat = x.reshape(x.shape[0], -1)
        if flat.shape[1] != self.weight.shape[1]:
            raise ValueError(
                f"SharedKernelLayer expects inputs with {self.weight.shape[1]} values per sample; "
                f"got shape {tuple(x.shape)}"
            )
        return flat

    def responses(self, x: Tensor) -> Tensor:
        """(B, C, |H|) inner products of each sample with each transformed kernel."""
        return torch.einsum("bd,cgd->bcg", self._flat(x), self.kernel_stack())

    def forward(self, x: Tensor) -> Tensor:
        r = self.responses(x)
        return torch.logsumexp(r, dim=-1) if self.task == "invariant" else r.flatten(1)


def reconstruction_objective(softmin_temperature: float = 0.1) -> Callable[[nn.Module, Tensor, Tensor], tuple[Tensor, Tensor]]:
    """The toys' reconstruction objective: the kernel stack must *reproduce* the samples.

    For a :class:`SharedKernelLayer`, the loss of sample x is its squared distance to a
    transformed kernel ``K[c, g]``, mean over its d entries: for the equivariant task to the
    labelled (c, g); for the invariant task (g unknown) a soft minimum over g,
    ``-τ·logsumexp(-dist/τ)``, so every element of the stack receives gradient. The logits
    returned for accuracy are the negative distances (pooled over g for the invariant task).

    Args:
        softmin_temperature: τ of the soft minimum over group elements.
    """
    _check.number("softmin_temperature", softmin_temperature, 0, inclusive=False)

    def objective(model: nn.Module, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        if not isinstance(model, SharedKernelLayer):
            raise ValueError("reconstruction_objective trains a SharedKernelLayer")
        k = model.kernel_stack()  # (C, |H|, d)
        flat = model._flat(x)
        dist = (flat[:, None, None, :] - k[None]).pow(2).mean(-1)  # (B, C, |H|)
        if model.task == "equivariant":
            logits = -dist.flatten(1)
            loss = dist.flatten(1).gather(1, y[:, None]).mean()
        else:
            tau = softmin_temperature
            logits = tau * torch.logsumexp(-dist / tau, dim=-1)  # (B, C): soft nearest element
            loss = -logits.gather(1, y[:, None]).mean()
        return loss, logits

    return objective
