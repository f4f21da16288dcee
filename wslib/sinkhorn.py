"""The Sinkhorn operator and the paper's two regularisers.

Sinkhorn turns any square matrix of real logits into a doubly stochastic matrix (entries >= 0,
every row and every column sums to 1) by alternately normalising rows and columns. We work in
log space: normalising a row of ``exp(X)`` is subtracting that row's ``logsumexp`` from ``X``,
which never overflows, whatever the size of the logits.
"""
from __future__ import annotations

import os
import warnings

import torch
from torch import Tensor

__all__ = [
    "sinkhorn",
    "log_sinkhorn",
    "normalization_loss",
    "entropy_loss",
    "doubly_stochastic_error",
]


# On a GPU the unrolled loop is ~80 tiny kernels whose cost is launch and autograd overhead,
# not arithmetic; torch.compile fuses it. Set WSLIB_COMPILE=0 (or this flag) to stay eager.
COMPILE_ON_CUDA = os.environ.get("WSLIB_COMPILE", "1") != "0"
_compiled = None


def _iterate(x: Tensor, n_iter: int) -> Tensor:
    for _ in range(n_iter):
        x = x - torch.logsumexp(x, dim=-1, keepdim=True)  # rows sum to 1
        x = x - torch.logsumexp(x, dim=-2, keepdim=True)  # columns sum to 1
    return x


def _iterate_compiled(x: Tensor, n_iter: int) -> Tensor:
    global _compiled, COMPILE_ON_CUDA
    if _compiled is None:
        # Not fullgraph: past torch's recompile limit (many shapes) it quietly runs eagerly.
        _compiled = torch.compile(_iterate)
    try:
        return _compiled(x, n_iter)
    except Exception as err:  # e.g. no Triton for this GPU: the eager loop is always correct
        warnings.warn(f"torch.compile of Sinkhorn failed ({type(err).__name__}); using eager mode")
        COMPILE_ON_CUDA = False
        return _iterate(x, n_iter)


def _check_square(x: Tensor, name: str) -> None:
    if x.dim() < 2 or x.shape[-1] != x.shape[-2]:
        raise ValueError(f"{name} must have shape (..., n, n); got {tuple(x.shape)}")


def log_sinkhorn(
    logits: Tensor,
    n_iter: int = 20,
    temperature: float = 1.0,
    check_finite: bool | None = None,
) -> Tensor:
    """Log-domain Sinkhorn: the logarithm of :func:`sinkhorn`'s result.

    Args:
        logits: (..., n, n) real logits; any leading batch dimensions.
        n_iter: number of (row, column) normalisation rounds, unrolled so gradients flow
            through every one. There is deliberately no data-dependent early exit: it would
            force a host synchronisation per iteration on a GPU.
        temperature: logits are divided by it first; small values push the result towards a
            permutation matrix, large ones towards the uniform matrix 1/n.
        check_finite: raise ``ValueError`` on NaN/inf logits. ``None`` (default) checks only on
            the CPU, where the check costs no device synchronisation.

    On CUDA the loop runs through ``torch.compile`` (fused kernels, same arithmetic) unless the
    environment variable ``WSLIB_COMPILE=0`` is set.

    Returns:
        (..., n, n) log of a doubly stochastic matrix. The last step normalises columns, so
        columns sum to 1 exactly (up to rounding) and rows to within the convergence error.
    """
    _check_square(logits, "logits")
    if n_iter < 1:
        raise ValueError(f"n_iter must be >= 1; got {n_iter}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0; got {temperature}")
    if check_finite is None:
        check_finite = logits.device.type == "cpu"
    if check_finite and not torch.isfinite(logits).all():
        raise ValueError("Sinkhorn logits contain NaN or infinite values")

    x = logits / temperature if temperature != 1.0 else logits
    if x.is_cuda and COMPILE_ON_CUDA:
        return _iterate_compiled(x, n_iter)
    return _iterate(x, n_iter)


def sinkhorn(
    logits: Tensor,
    n_iter: int = 20,
    temperature: float = 1.0,
    check_finite: bool | None = None,
) -> Tensor:
    """Doubly stochastic matrices from logits: ``exp`` of :func:`log_sinkhorn`.

    Implements S^0(X) = exp(X/τ), S^l(X) = T_c(T_r(S^{l-1}(X))) with T_r / T_c the row and column
    normalisations, for ``l = 1..n_iter``. Safe for logits of any magnitude (no overflow, no NaN
    for |logits| up to 1e4 and beyond) and differentiable.

    Args:
        logits: (..., n, n) real logits.
        n_iter: Sinkhorn iterations (20 in the paper's setting).
        temperature: divide the logits by it before normalising (default 1: the paper's setting).
        check_finite: see :func:`log_sinkhorn`.

    Returns:
        (..., n, n) non-negative matrices whose rows and columns sum to 1.
    """
    return log_sinkhorn(logits, n_iter, temperature, check_finite).exp()


def normalization_loss(logits: Tensor) -> Tensor:
    """The paper's normalisation regulariser, computed on the *raw* logits Θ.

    For each matrix: the mean over its n rows of ``logsumexp(row)²`` plus the mean over its n
    columns of ``logsumexp(column)²``; then the mean over all matrices in the stack. It is zero
    exactly when ``exp(Θ)`` already has unit row and column sums, i.e. it pulls the logits
    towards a point where few Sinkhorn iterations suffice.

    Args:
        logits: (..., n, n).

    Returns:
        a scalar tensor.
    """
    _check_square(logits, "logits")
    rows = torch.logsumexp(logits, dim=-1)  # (..., n)
    cols = torch.logsumexp(logits, dim=-2)  # (..., n)
    return (rows.pow(2) + cols.pow(2)).mean()


def entropy_loss(stack: Tensor, eps: float = 1e-16) -> Tensor:
    """The paper's entropy regulariser: ``-Σ R log R`` over the whole stack.

    Zero for (stacks of) permutation matrices and largest for the uniform matrix, so adding it
    to the loss pushes doubly stochastic matrices towards hard permutations.

    Args:
        stack: (..., n, n) non-negative matrices (e.g. the output of :func:`sinkhorn`).
        eps: entries are clamped at ``eps`` inside the log so zeros give finite gradients.

    Returns:
        a scalar tensor (a sum, not a mean).
    """
    _check_square(stack, "stack")
    return -(stack * stack.clamp_min(eps).log()).sum()


def doubly_stochastic_error(matrix: Tensor) -> Tensor:
    """How far matrices are from doubly stochastic.

    Args:
        matrix: (..., n, n).

    Returns:
        (...) the largest of: |row sum − 1|, |column sum − 1| and the most negative entry's
        magnitude. Zero exactly for doubly stochastic matrices.
    """
    _check_square(matrix, "matrix")
    row_err = (matrix.sum(dim=-1) - 1).abs().amax(dim=-1)
    col_err = (matrix.sum(dim=-2) - 1).abs().amax(dim=-1)
    neg = (-matrix).clamp_min(0).amax(dim=(-2, -1))
    return torch.maximum(torch.maximum(row_err, col_err), neg)
