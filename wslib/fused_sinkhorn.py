"""A fused Sinkhorn for GPUs: one Triton program per matrix, every iteration on chip.

The unrolled log-domain loop of :mod:`wslib.sinkhorn` costs a GPU about 80 small kernels forward
and as many backward per call, for arithmetic that takes microseconds. Here one program loads a
whole d×d matrix (d ≤ 256 fits one block), runs all K iterations in registers and writes the
result once. It keeps the Sinkhorn state in *potential form*: after any half-step the iterate is
``X − u_i − v_j`` for a row potential u and a column potential v, so a row normalisation is
``u ← logsumexp_j(X_ij − v_j)`` and a column one ``v ← logsumexp_i(X_ij − u_i)``.

The backward pass replays the iterations in reverse. Normalising a row, ``z = y − lse(y)``, has
the vector-Jacobian product ``ḡ_y = ḡ_z − exp(z) · Σ_row ḡ_z``, which needs only the output z of
that half-step; the forward pass stores the 2K potential vectors (K·2d numbers per matrix, not K
matrices), from which every intermediate iterate is rebuilt exactly as ``X − u − v``. The gradient
is therefore that of the unrolled loop under autograd, to float32 rounding, not an
implicit-function approximation.

Both directions are registered with ``torch.library`` as the custom op ``wslib::log_sinkhorn``
(with a fake implementation and an autograd formula), so ``torch.compile`` captures a step that
calls it without a graph break. On the CPU the op runs the same potential-form algorithm in
PyTorch, or the Triton kernels themselves under Triton's interpreter (``TRITON_INTERPRET=1``,
set before triton is first imported), which is how the tests check the kernels without a GPU.
"""
from __future__ import annotations

import os

import torch
from torch import Tensor

__all__ = ["fused_log_sinkhorn", "triton_available", "MAX_DIM"]

MAX_DIM = 256  # one block per matrix; a group layer at k = 5, |H| = 4 has d = 100


def triton_available() -> bool:
    """Whether the ``triton`` package is importable (it ships with CUDA builds of torch)."""
    return triton is not None


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


# --- the Triton kernels -------------------------------------------------------------------------
# Triton decides at import whether its kernels run compiled or in its interpreter
# (TRITON_INTERPRET=1), so this module is imported only when the fused method is first used.

try:
    import triton
    import triton.language as tl
except ImportError:  # CPU-only installs: the op falls back to PyTorch
    triton = None

if triton is not None:

    @triton.jit
    def _load_matrix(x_ptr, n, BLOCK: tl.constexpr):
        # This program's matrix as a BLOCK×BLOCK tile, padded with -inf (exp gives 0 there).
        b = tl.program_id(0)
        i = tl.arange(0, BLOCK)
        ok_i = i < n
        ok = ok_i[:, None] & ok_i[None, :]
        offs = b * n * n + i[:, None] * n + i[None, :]
        x = tl.load(x_ptr + offs, mask=ok, other=-float("inf")).to(tl.float32)
        return x, b, i, ok_i, ok, offs

    @triton.jit
    def _forward_kernel(x_ptr, out_ptr, u_ptr, v_ptr, n, n_iter, BLOCK: tl.constexpr):
        # Program b normalises matrix b of x (B, n, n); u, v: (B, n_iter + 1, n) potentials,
        # entry 0 the zero start, entry l those after iteration l.
        x, b, i, ok_i, ok, offs = _load_matrix(x_ptr, n, BLOCK)
        u = tl.full([BLOCK], 0.0, tl.float32)
        v = tl.full([BLOCK], 0.0, tl.float32)
        hist = b * (n_iter + 1) * n
        tl.store(u_ptr + hist + i, u, mask=ok_i)
        tl.store(v_ptr + hist + i, v, mask=ok_i)
        for step in range(n_iter):
            z = x - v[None, :]  # rows: u_i = logsumexp_j (x_ij - v_j)
            m = tl.where(ok_i, tl.max(z, axis=1), 0.0)
            total = tl.where(ok_i, tl.sum(tl.exp(z - m[:, None]), axis=1), 1.0)
            u = tl.where(ok_i, m + tl.log(total), 0.0)  # padding rows keep u = 0
            z = x - u[:, None]  # columns: v_j = logsumexp_i (x_ij - u_i)
            m = tl.where(ok_i, tl.max(z, axis=0), 0.0)
            total = tl.where(ok_i, tl.sum(tl.exp(z - m[None, :]), axis=0), 1.0)
            v = tl.where(ok_i, m + tl.log(total), 0.0)
            at = hist + (step + 1) * n + i
            tl.store(u_ptr + at, u, mask=ok_i)
            tl.store(v_ptr + at, v, mask=ok_i)
        tl.store(out_ptr + offs, x - u[:, None] - v[None, :], mask=ok)

    @triton.jit
    def _backward_kernel(grad_ptr, x_ptr, u_ptr, v_ptr, dx_ptr, n, n_iter, BLOCK: tl.constexpr):
        # Walks the iterations in reverse; each half-step's output is rebuilt as x - u - v.
        x, b, i, ok_i, ok, offs = _load_matrix(x_ptr, n, BLOCK)
        g = tl.load(grad_ptr + offs, mask=ok, other=0.0).to(tl.float32)
        hist = b * (n_iter + 1) * n
        for back in range(n_iter):
            at = hist + (n_iter - back) * n + i
            u = tl.load(u_ptr + at, mask=ok_i, other=0.0)
            v = tl.load(v_ptr + at, mask=ok_i, other=0.0)
            v_before = tl.load(v_ptr + at - n, mask=ok_i, other=0.0)
            # column step: output x - u - v
            g = g - tl.exp(x - u[:, None] - v[None, :]) * tl.sum(g, axis=0)[None, :]
            # row step: output x - u - v_before
            g = g - tl.exp(x - u[:, None] - v_before[None, :]) * tl.sum(g, axis=1)[:, None]
        tl.store(dx_ptr + offs, g, mask=ok)


def _launch_config(n: int) -> tuple[int, int]:
    block = max(16, 1 << (n - 1).bit_length())
    return block, max(1, min(16, block * block // 2048))


# Whether the kernels above were built for the interpreter (then they take CPU tensors only).
_INTERPRETED = triton is not None and _interpreting()


def _use_triton(x: Tensor) -> bool:
    if triton is None:
        return False
    if x.is_cuda:
        return not _INTERPRETED
    # Setting TRITON_INTERPRET=0 later sends CPU tensors back to the PyTorch path.
    return x.device.type == "cpu" and _INTERPRETED and _interpreting()


# --- the same algorithm in PyTorch (the op's CPU implementation) ------------------------------


def _forward_torch(x: Tensor, n_iter: int) -> tuple[Tensor, Tensor, Tensor]:
    u = x.new_zeros(x.shape[:-1])
    v = x.new_zeros(x.shape[:-1])
    us, vs = [u], [v]
    for _ in range(n_iter):
        u = torch.logsumexp(x - v[:, None, :], dim=-1)
        v = torch.logsumexp(x - u[:, :, None], dim=-2)
        us.append(u)
        vs.append(v)
    return x - u[:, :, None] - v[:, None, :], torch.stack(us, 1), torch.stack(vs, 1)


def _backward_torch(grad: Tensor, x: Tensor, u_hist: Tensor, v_hist: Tensor) -> Tensor:
    g = grad
    for step in range(u_hist.shape[1] - 1, 0, -1):
        u, v, v_before = u_hist[:, step, :, None], v_hist[:, step, None, :], v_hist[:, step - 1, None, :]
        g = g - (x - u - v).exp() * g.sum(dim=-2, keepdim=True)
        g = g - (x - u - v_before).exp() * g.sum(dim=-1, keepdim=True)
    return g


# --- the custom op ---------------------------------------------------------------------------


@torch.library.custom_op("wslib::log_sinkhorn_fwd", mutates_args=())
def _log_sinkhorn_fwd(x: Tensor, n_iter: int) -> tuple[Tensor, Tensor, Tensor]:
    if not _use_triton(x):
        return _forward_torch(x, n_iter)
    x = x.contiguous()
    batch, n = x.shape[0], x.shape[-1]
    out = torch.empty_like(x)
    u_hist = x.new_empty(batch, n_iter + 1, n)
    v_hist = x.new_empty(batch, n_iter + 1, n)
    block, warps = _launch_config(n)
    _forward_kernel[(batch,)](x, out, u_hist, v_hist, n, n_iter, BLOCK=block, num_warps=warps)
    return out, u_hist, v_hist


@_log_sinkhorn_fwd.register_fake
def _(x: Tensor, n_iter: int) -> tuple[Tensor, Tensor, Tensor]:
    hist = x.new_empty(x.shape[0], n_iter + 1, x.shape[-1])
    return torch.empty_like(x), hist, torch.empty_like(hist)


@torch.library.custom_op("wslib::log_sinkhorn_bwd", mutates_args=())
def _log_sinkhorn_bwd(grad: Tensor, x: Tensor, u_hist: Tensor, v_hist: Tensor) -> Tensor:
    if not _use_triton(x):
        return _backward_torch(grad, x, u_hist, v_hist)
    grad, x = grad.contiguous(), x.contiguous()
    dx = torch.empty_like(x)
    block, warps = _launch_config(x.shape[-1])
    _backward_kernel[(x.shape[0],)](grad, x, u_hist, v_hist, dx, x.shape[-1], u_hist.shape[1] - 1,
                                   BLOCK=block, num_warps=warps)
    return dx


@_log_sinkhorn_bwd.register_fake
def _(grad: Tensor, x: Tensor, u_hist: Tensor, v_hist: Tensor) -> Tensor:
    return torch.empty_like(x)


def _setup_context(ctx, inputs, output) -> None:
    x, _ = inputs
    _, u_hist, v_hist = output
    ctx.save_for_backward(x, u_hist, v_hist)


def _backward(ctx, grad_out: Tensor, grad_u, grad_v):
    x, u_hist, v_hist = ctx.saved_tensors
    return _log_sinkhorn_bwd(grad_out, x, u_hist, v_hist), None


_log_sinkhorn_fwd.register_autograd(_backward, setup_context=_setup_context)


def fused_log_sinkhorn(x: Tensor, n_iter: int) -> Tensor:
    """Log-domain Sinkhorn of (..., n, n) logits (already divided by the temperature).

    The same operator and, to float32 rounding, the same values and gradients as the unrolled
    loop of :func:`wslib.sinkhorn.log_sinkhorn` with ``method="log"``; computed in float32 and
    returned in ``x``'s dtype. On CUDA (and under ``TRITON_INTERPRET=1`` on the CPU) it runs the
    Triton kernels, else the same algorithm in PyTorch. Reach it through
    ``log_sinkhorn(..., method="fused")``, which also checks the arguments.

    Returns:
        (..., n, n) log of a doubly stochastic matrix.
    """
    n = x.shape[-1]
    if n > MAX_DIM:
        raise ValueError(f"the fused Sinkhorn handles matrices up to {MAX_DIM}×{MAX_DIM}; got {n}×{n}")
    flat = x.reshape(-1, n, n)
    out, _, _ = _log_sinkhorn_fwd(flat.float(), n_iter)
    return out.to(x.dtype).reshape(x.shape)
