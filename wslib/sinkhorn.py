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

from ._validate import flag, integer, number, tensor

__all__ = [
    "sinkhorn",
    "log_sinkhorn",
    "sinkhorn_iterations",
    "AUTHORS_TOL",
    "normalization_loss",
    "entropy_loss",
    "doubly_stochastic_error",
]


# On a GPU the unrolled loop is ~80 tiny kernels whose cost is launch and autograd overhead,
# not arithmetic; torch.compile fuses it. Set WSLIB_COMPILE=0 (or this flag) to stay eager.
COMPILE_ON_CUDA = os.environ.get("WSLIB_COMPILE", "1") != "0"
_compiled = None

METHODS = ("auto", "log", "scaling", "fused")

# The scaling form runs in float64 on the CPU; it is used only while every matrix's logit range
# (max − min, after the temperature) is at most this, so that exp(−range) and the squared
# scalings of the backward pass stay far inside float64's range (e^±709).
SCALING_MAX_RANGE = 100.0

# The authors' stopping rule: before every iteration, stop once ``torch.allclose(sums, 1)`` holds
# for the row and the column sums of the whole stack, at allclose's defaults (rtol 1e-5,
# atol 1e-8), i.e. once every |sum − 1| <= atol + rtol·1. As a ``tol`` it is this number.
AUTHORS_TOL = 1e-8 + 1e-5


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


class _ScalingSinkhorn(torch.autograd.Function):
    """Sinkhorn in the exponential domain with a hand-written backward pass.

    The same operator as the log-domain loop, written as P = diag(a) · E · diag(b) with
    E = exp(X − max X): a row normalisation is a ← 1 / (E b), a column one b ← 1 / (Eᵀ a), so an
    iteration costs two matrix-vector products instead of two log-sum-exps over the matrix.
    The backward pass walks the iterations in reverse with vectors only and collects the
    gradient of E in one rank-2K product, instead of K matrix-sized autograd nodes. It runs in
    float64, which keeps it as accurate as the float32 log-domain loop for logit ranges up to
    :data:`SCALING_MAX_RANGE`. Input (B, n, n) (already divided by the temperature); output
    (B, n, n) doubly stochastic, in the input's dtype. With a ``tol`` it stops before the first
    iteration (after the first) at which every row sum of the stack is within ``tol`` of 1; the
    column sums are then 1 by construction. This float64 test can run one iteration more or
    fewer than :func:`sinkhorn_iterations`'s float32 count when a sum lies within float32
    rounding of the tolerance (1 of 900 random stacks at ``tol=1e-4``).
    """

    @staticmethod
    def forward(ctx, x: Tensor, n_iter: int, tol: float | None = None) -> Tensor:
        # Subtracting the maximum changes nothing (P is invariant to a constant shift of X).
        e = (x.detach() - x.detach().amax(dim=(-2, -1), keepdim=True)).double().exp()
        b = e.new_ones(*e.shape[:-1], 1)  # (B, n, 1)
        a_hist, b_hist = [], [b]
        for step in range(n_iter):
            a_next = (e @ b).reciprocal_()  # rows of diag(a) E diag(b) sum to 1
            # With a tolerance, test the current matrix first, at no extra cost: its row sums
            # are a / a_next, its column sums 1 by construction (the last step set b).
            if tol is not None and step > 0 and ((a / a_next - 1).abs() <= tol).all():
                break
            a = a_next
            b = (e.transpose(-1, -2) @ a).reciprocal_()  # then columns
            a_hist.append(a)
            b_hist.append(b)
        ctx.save_for_backward(e, torch.cat(a_hist, -1), torch.cat(b_hist, -1))
        return (a * e * b.transpose(-1, -2)).to(x.dtype)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor):
        e, a_hist, b_hist = ctx.saved_tensors  # (B,n,n), (B,n,K), (B,n,K+1)
        n_iter = a_hist.shape[-1]
        g = grad.double()
        a, b = a_hist[..., -1:], b_hist[..., -1:]
        ge = g * e
        a_bar = ge @ b  # gradient of the last a and b through P = a·E·b
        b_bar = ge.transpose(-1, -2) @ a
        e_bars, c_bars = [None] * n_iter, [None] * n_iter
        for step in range(n_iter - 1, -1, -1):
            b_now, a_now = b_hist[..., step + 1:step + 2], a_hist[..., step:step + 1]
            e_bar = -b_bar * b_now * b_now  # through b = 1 / (Eᵀ a)
            a_bar = e @ e_bar + (a_bar if step == n_iter - 1 else 0)
            c_bar = -a_bar * a_now * a_now  # through a = 1 / (E b_prev)
            b_bar = e.transpose(-1, -2) @ c_bar
            e_bars[step], c_bars[step] = e_bar, c_bar
        # dE = g∘(a bᵀ) + Σ_l (a_l ē_lᵀ + c̄_l b_{l−1}ᵀ): the sum is one batched matrix product.
        left = torch.cat([a_hist, torch.cat(c_bars, -1)], -1)
        right = torch.cat([torch.cat(e_bars, -1), b_hist[..., :-1]], -1)
        e_grad = g * (a * b.transpose(-1, -2)) + left @ right.transpose(-1, -2)
        return (e_grad * e).to(grad.dtype), None, None


def _spread(x: Tensor) -> Tensor:
    x = x.detach()
    return x.amax(dim=(-2, -1)) - x.amin(dim=(-2, -1))


def _scaling_applies(x: Tensor) -> bool:
    """Whether the scaling form is the automatic choice: on the CPU (the range check reads one
    number, which costs a GPU a synchronisation but a CPU nothing) for moderate logit ranges."""
    if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64) or x.numel() == 0:
        return False
    return bool(_spread(x).max() <= SCALING_MAX_RANGE)


def _sinkhorn_scaling(x: Tensor, n_iter: int, tol: float | None = None) -> Tensor:
    n = x.shape[-1]
    return _ScalingSinkhorn.apply(x.reshape(-1, n, n), n_iter, tol).reshape(x.shape)


def _resolve(x: Tensor, method: str | None) -> str:
    method = "auto" if method is None else method
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, METHODS))}; got {method!r}")
    if method == "auto":
        if torch.compiler.is_compiling():  # a captured graph takes the loop the compiler fuses
            return "log"
        return "scaling" if _scaling_applies(x) else "log"
    if method == "scaling" and x.numel():
        spread = float(_spread(x).max())
        if not spread <= SCALING_MAX_RANGE:
            raise ValueError(f"method='scaling' needs logit ranges <= {SCALING_MAX_RANGE} "
                             f"(after the temperature); got {spread:.3g}: use 'log'")
    return method


def _log_domain(x: Tensor, n_iter: int, method: str) -> Tensor:
    if method == "fused":
        from .fused_sinkhorn import fused_log_sinkhorn

        return fused_log_sinkhorn(x, n_iter)
    if x.is_cuda and COMPILE_ON_CUDA:
        return _iterate_compiled(x, n_iter)
    return _iterate(x, n_iter)


def _check_tol(tol: float | None) -> None:
    if tol is not None and (isinstance(tol, bool) or not isinstance(tol, (int, float))
                            or not 0 < tol < float("inf")):
        raise ValueError(f"tol must be None (a fixed number of iterations) or a finite number > 0; "
                         f"got {tol!r}")


def sinkhorn_iterations(logits: Tensor, n_iter: int = 20, tol: float = AUTHORS_TOL) -> int:
    """How many Sinkhorn iterations run under a tolerance: the stopping rule of ``tol``.

    Before every iteration the whole stack is tested: if every row sum and every column sum of
    the current matrices is within ``tol`` of 1, Sinkhorn stops. So the count is the smallest
    k in 0..n_iter−1 at which the test passes, or ``n_iter`` if it never does. The test runs in
    the logits' own dtype, without gradients; on a GPU each test reads one boolean back to the
    host (a synchronisation).

    Args:
        logits: (..., n, n) logits, already divided by any temperature.
        n_iter: the cap.
        tol: the tolerance; ``AUTHORS_TOL`` (default) is the authors' ``allclose`` rule.

    Returns:
        the number of iterations, 0..n_iter.
    """
    _check_square(logits, "logits")
    integer("n_iter", n_iter, minimum=0)
    _check_tol(tol)
    with torch.no_grad():
        x = logits.detach()
        for k in range(n_iter):
            if _within(x, tol):
                return k
            x = x - torch.logsumexp(x, dim=-1, keepdim=True)
            x = x - torch.logsumexp(x, dim=-2, keepdim=True)
    return n_iter


def _within(x: Tensor, tol: float) -> bool:
    """The stopping test: every row and column sum of ``exp(x)`` (the whole stack) is within
    ``tol`` of 1, computed in ``x``'s dtype."""
    p = x.detach().exp()
    return bool(((p.sum(dim=-1) - 1).abs() <= tol).all()
                and ((p.sum(dim=-2) - 1).abs() <= tol).all())


def _check_square(x: Tensor, name: str) -> None:
    tensor(name, x)
    if x.dim() < 2 or x.shape[-1] != x.shape[-2]:
        raise ValueError(f"{name} must have shape (..., n, n); got {tuple(x.shape)}")


def _prepare(logits: Tensor, n_iter: int, temperature: float, check_finite: bool | None) -> Tensor:
    _check_square(logits, "logits")
    tensor("logits", logits, floating=True)
    integer("n_iter", n_iter, minimum=1)
    temperature = number("temperature", temperature, minimum=0, inclusive=False)
    if check_finite is not None:
        flag("check_finite", check_finite)
    if check_finite is None:
        # Never inside torch.compile: a data-dependent branch would split the captured graph.
        check_finite = logits.device.type == "cpu" and not torch.compiler.is_compiling()
    if check_finite and not torch.isfinite(logits).all():
        raise ValueError("Sinkhorn logits contain NaN or infinite values")
    return logits / temperature if temperature != 1.0 else logits


def _normalise(x: Tensor, n_iter: int, tol: float | None, method: str | None,
               log: bool) -> Tensor:
    """Sinkhorn on prepared logits; the log of the result if ``log``."""
    _check_tol(tol)
    method = _resolve(x, method)
    if method == "scaling":  # tests the tolerance as it goes; only the start is tested here
        if tol is not None and _within(x, tol):
            n_iter = 0
    elif tol is not None:  # the loops count first, without gradients
        n_iter = sinkhorn_iterations(x, n_iter, tol)
    if n_iter == 0:  # already doubly stochastic within tol
        return x if log else x.exp()
    if method == "scaling":
        p = _sinkhorn_scaling(x, n_iter, tol)
        return p.log() if log else p
    y = _log_domain(x, n_iter, method)
    return y if log else y.exp()


def log_sinkhorn(
    logits: Tensor,
    n_iter: int = 20,
    temperature: float = 1.0,
    check_finite: bool | None = None,
    method: str | None = None,
    tol: float | None = None,
) -> Tensor:
    """Log-domain Sinkhorn: the logarithm of :func:`sinkhorn`'s result.

    Args:
        logits: (..., n, n) real logits; any leading batch dimensions.
        n_iter: number of (row, column) normalisation rounds, unrolled so gradients flow
            through every one; with ``tol``, the most that may run.
        temperature: logits are divided by it first; small values push the result towards a
            permutation matrix, large ones towards the uniform matrix 1/n.
        check_finite: raise ``ValueError`` on NaN/inf logits. ``None`` (default) checks only on
            the CPU, where the check costs no device synchronisation.
        method: how to evaluate the same operator. ``"log"``: the unrolled log-domain loop,
            the reference (on CUDA through ``torch.compile`` unless ``WSLIB_COMPILE=0``).
            ``"scaling"``: the exponential-domain form with a hand-written backward
            (``_ScalingSinkhorn``), about 3× faster on a CPU. ``"fused"``: one Triton
            program per matrix (:mod:`wslib.fused_sinkhorn`). ``"auto"``/``None`` (default):
            scaling on the CPU while the logit range is at most ``SCALING_MAX_RANGE``,
            else log. All agree to float32 rounding, values and gradients.
        tol: ``None`` (default): exactly ``n_iter`` iterations. A number: stop early, before
            the first iteration at which every row and column sum of the whole stack is within
            ``tol`` of 1, and gradients flow through the iterations that ran. The scaling form
            tests as it goes, in float64, at no extra cost (the row sums are a ratio of two
            scaling vectors it computes anyway); the loops ("log", "fused") first count the
            iterations without gradients (:func:`sinkhorn_iterations`), then run that many.
            ``AUTHORS_TOL`` is the authors' rule. On a GPU every test costs a host
            synchronisation (at most ``n_iter`` per call), so there the fixed count
            (``tol=None``) is the fast choice.

    Returns:
        (..., n, n) log of a doubly stochastic matrix. The last step normalises columns, so
        columns sum to 1 exactly (up to rounding) and rows to within the convergence error.
    """
    x = _prepare(logits, n_iter, temperature, check_finite)
    return _normalise(x, n_iter, tol, method, log=True)


def sinkhorn(
    logits: Tensor,
    n_iter: int = 20,
    temperature: float = 1.0,
    check_finite: bool | None = None,
    method: str | None = None,
    tol: float | None = None,
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
        method: ``"auto"`` (default), ``"log"``, ``"scaling"`` or ``"fused"``; see
            :func:`log_sinkhorn`.
        tol: ``None`` (default) runs ``n_iter`` iterations; a number stops early once every
            row and column sum is within ``tol`` of 1 (``AUTHORS_TOL``: the authors' rule);
            see :func:`log_sinkhorn`.

    Returns:
        (..., n, n) non-negative matrices whose rows and columns sum to 1.
    """
    x = _prepare(logits, n_iter, temperature, check_finite)
    return _normalise(x, n_iter, tol, method, log=False)


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
    if logits.numel() == 0:  # no matrices: nothing to normalise
        return logits.new_zeros(())
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
        (...) the largest of |row sum − 1|, |column sum − 1| and the most negative entry's
        magnitude. Zero exactly for doubly stochastic matrices.
    """
    _check_square(matrix, "matrix")
    row_err = (matrix.sum(dim=-1) - 1).abs().amax(dim=-1)
    col_err = (matrix.sum(dim=-2) - 1).abs().amax(dim=-1)
    neg = (-matrix).clamp_min(0).amax(dim=(-2, -1))
    return torch.maximum(torch.maximum(row_err, col_err), neg)
