"""Lifting and group convolutions as weight sharing.

A group convolution is one *base kernel* θ transformed by a stack of |H| matrices R_1..R_|H|,
followed by a single ordinary ``conv2d``. What the stack is decides what the layer is:

* :class:`FixedRepresentation` holding exact permutation matrices (e.g. ``rotation_stack``)
  makes the layer an exact G-CNN layer;
* :class:`LearnedRepresentation` holding Sinkhorn-normalised logits makes it the paper's learned
  weight-sharing (WSCNN) layer.

The two conv layers below do not know which of the two they were given.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import _validate as _check
from .sinkhorn import METHODS as SINKHORN_METHODS
from .sinkhorn import entropy_loss, normalization_loss, sinkhorn

__all__ = [
    "FixedRepresentation",
    "LearnedRepresentation",
    "LiftingConv2d",
    "GroupConv2d",
    "representation_losses",
    "shared_sinkhorn",
    "count_parameters",
]


class FixedRepresentation(nn.Module):
    """A constant stack of |H| matrices (not learned): an exact group gives a G-CNN layer.

    Args:
        stack: (|H|, d, d) matrices, e.g. ``wslib.groups.rotation_stack(5)``. Stored as a buffer,
            so it moves with the module between devices and lands in the state dict.
    """

    def __init__(self, stack: Tensor):
        super().__init__()
        if stack.dim() != 3 or stack.shape[1] != stack.shape[2]:
            raise ValueError(f"stack must have shape (|H|, d, d); got {tuple(stack.shape)}")
        self.register_buffer("stack", stack.detach().clone())

    @property
    def size(self) -> int:
        return self.stack.shape[0]

    @property
    def dim(self) -> int:
        return self.stack.shape[1]

    def forward(self) -> Tensor:
        """Returns the (|H|, d, d) stack."""
        return self.stack

    def extra_repr(self) -> str:
        return f"size={self.size}, dim={self.dim}"


class LearnedRepresentation(nn.Module):
    """The paper's learned stack of |H| doubly stochastic d×d matrices.

    The learnable parameter is ``logits``, initialised U[0, 1) as in the paper: shape
    (|H|−1, d, d) when the first element is anchored to the identity (``fix_identity=True``, the
    paper's choice: it separates the base kernel from its transforms), else (|H|, d, d). Calling
    the module runs Sinkhorn on the logits and returns the (|H|, d, d) stack, identity first.

    Args:
        size: |H|, the number of matrices in the stack.
        dim: d, the side of each matrix (k² for a lifting layer, |H|·k² for a group layer).
        n_iter: Sinkhorn iterations.
        fix_identity: anchor element 0 to the identity (not learned).
        temperature: Sinkhorn temperature; a plain attribute, so it can be annealed in training.
        tol: ``None`` (default): always ``n_iter`` Sinkhorn iterations. A number: stop early
            once every row and column sum of this layer's stack is within ``tol`` of 1
            (``wslib.sinkhorn.AUTHORS_TOL`` is the authors' rule; see ``wslib.sinkhorn.sinkhorn``).
    """

    def __init__(
        self,
        size: int,
        dim: int,
        n_iter: int = 20,
        fix_identity: bool = True,
        temperature: float = 1.0,
        tol: float | None = None,
    ):
        super().__init__()
        self.size, self.dim = _check.integer("size", size, 1), _check.integer("dim", dim, 1)
        self.fix_identity = _check.flag("fix_identity", fix_identity)
        self.n_iter, self.temperature, self.tol = n_iter, temperature, tol
        n_learned = size - 1 if fix_identity else size
        self.logits = nn.Parameter(torch.rand(n_learned, dim, dim))
        self.method = None  # Sinkhorn evaluation, see wslib.sinkhorn.log_sinkhorn
        # Set only inside a `shared_sinkhorn` block: the learned matrices of this step.
        self._shared: Tensor | None = None

    # The Sinkhorn settings are checked whenever they are set (in training they are annealed
    # and changed after construction), so a bad value fails where it is given.
    @property
    def n_iter(self) -> int:
        return self._n_iter

    @n_iter.setter
    def n_iter(self, value: int) -> None:
        self._n_iter = _check.integer("n_iter", value, 1)

    @property
    def temperature(self) -> float:
        return self._temperature

    @temperature.setter
    def temperature(self, value: float) -> None:
        self._temperature = _check.number("temperature", value, 0, inclusive=False)

    @property
    def tol(self) -> float | None:
        return self._tol

    @tol.setter
    def tol(self, value: float | None) -> None:
        self._tol = None if value is None else _check.number("tol", value, 0, inclusive=False)

    @property
    def method(self) -> str | None:
        return self._method

    @method.setter
    def method(self, value: str | None) -> None:
        if value is not None and value not in SINKHORN_METHODS:
            raise ValueError(f"method must be None or one of "
                             f"{', '.join(map(repr, SINKHORN_METHODS))}; got {value!r}")
        self._method = value

    def soft_stack(self) -> Tensor:
        """The (|H|−1, d, d) learned matrices, sinkhorn(logits) ((|H|, d, d) without the
        identity anchor); inside :func:`shared_sinkhorn`, the block's one computation of them."""
        if self._shared is not None:
            return self._shared
        return sinkhorn(self.logits, self.n_iter, self.temperature, method=self.method,
                        tol=self.tol)

    def forward(self) -> Tensor:
        """Returns the (|H|, d, d) stack: [I, sinkhorn(logits)...] or sinkhorn(logits)."""
        if self.logits.shape[0] == 0:  # |H| = 1 with the identity anchored: nothing is learned
            return torch.eye(self.dim, dtype=self.logits.dtype, device=self.logits.device)[None]
        soft = self.soft_stack()
        if not self.fix_identity:
            return soft
        eye = torch.eye(self.dim, dtype=soft.dtype, device=soft.device).unsqueeze(0)
        return torch.cat([eye, soft], dim=0)

    def normalization_loss(self) -> Tensor:
        """The paper's normalisation regulariser on the raw logits (scalar); 0 when nothing is
        learned (|H| = 1 with the identity anchored), where the mean over no matrices is NaN."""
        if self.logits.shape[0] == 0:
            return self.logits.new_zeros(())
        return normalization_loss(self.logits)

    def entropy_loss(self) -> Tensor:
        """The paper's entropy regulariser on the normalised learned matrices (scalar); 0 when
        nothing is learned."""
        if self.logits.shape[0] == 0:
            return self.logits.new_zeros(())
        return entropy_loss(self.soft_stack())

    def extra_repr(self) -> str:
        return (
            f"size={self.size}, dim={self.dim}, n_iter={self.n_iter}, "
            f"fix_identity={self.fix_identity}, temperature={self.temperature}"
            + ("" if self.tol is None else f", tol={self.tol:g}")
        )


class _WeightSharingConv(nn.Module):
    """Shared machinery: base kernel → kernel stack via the representation → one conv2d.

    Subclasses say how many input group elements each input channel carries (1 for lifting,
    |H| for a group convolution).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        representation: nn.Module,
        in_group: int,
        padding: int = 0,
        bias: bool = True,
    ):
        super().__init__()
        if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 1:
            raise ValueError(f"kernel_size must be a positive int; got {kernel_size!r}")
        in_channels = _check.integer("in_channels", in_channels, 1)
        out_channels = _check.integer("out_channels", out_channels, 1)
        padding = _check.integer("padding", padding, 0)
        _check.flag("bias", bias)
        if not isinstance(representation, nn.Module) or not all(
                hasattr(representation, a) for a in ("size", "dim")):
            raise TypeError("representation must be a module with `size` and `dim` that returns "
                            f"an (|H|, d, d) stack; got {type(representation).__name__}")
        expected = in_group * kernel_size**2
        size, dim = representation.size, representation.dim
        if dim != expected:
            what = "k²" if in_group == 1 else "|H|·k²"
            raise ValueError(
                f"{type(self).__name__} with kernel_size={kernel_size} needs a representation of "
                f"{what} = {expected}-dimensional matrices; got a stack of {size} {dim}×{dim} matrices"
            )
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.padding, self.in_group = kernel_size, padding, in_group
        self.representation = representation
        # Base kernel θ: (C_out, C_in, |H_in|·k²), input-group-major, then row-major pixels.
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, expected))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()
        self._cache: tuple[tuple, Tensor] | None = None

    @property
    def group_size(self) -> int:
        """|H|, the size of the output group axis."""
        return self.representation.size

    def reset_parameters(self) -> None:
        # The same fan-in scaling as nn.Conv2d: each output sums C_in·|H_in|·k² products.
        fan_in = self.weight.shape[1] * self.weight.shape[2]
        bound = 1 / math.sqrt(fan_in)
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def expanded_kernel(self) -> Tensor:
        """The conv2d weight (C_out·|H|, C_in·|H_in|, k, k): K[o, g, i] = R_g θ[o, i].

        Output channels are ordered channel-major, group-minor (index o·|H| + g), and so are
        the input channels of a group convolution (index i·|H| + h).
        """
        stack = self.representation()  # (|H|, D, D)
        kernel = torch.einsum("gde,oie->ogid", stack, self.weight)  # (C_out, |H|, C_in, D)
        k = self.kernel_size
        return kernel.reshape(
            self.out_channels * stack.shape[0], self.in_channels * self.in_group, k, k
        )

    def _cache_key(self) -> tuple:
        """Everything the expanded kernel depends on: every parameter and buffer (where it lives
        and how often it was changed in place) and every plain setting of this layer and its
        representation -- Sinkhorn's n_iter, temperature, tol and method among them, so that
        annealing the temperature, say, is never answered with a kernel of the old one."""
        tensors = [t for t in self.parameters()] + [t for t in self.buffers()]
        state = tuple((t.data_ptr(), t._version, t.dtype, t.device) for t in tensors)
        return state + tuple(_settings(m) for m in self.modules())

    def _conv_weights(self) -> tuple[Tensor, Tensor | None]:
        """The conv2d kernel and bias (C_out·|H|,): the bias is shared over the group axis."""
        bias = None if self.bias is None else self.bias.repeat_interleave(self.group_size)
        return self.expanded_kernel(), bias

    def _cached_conv_weights(self) -> tuple[Tensor, Tensor | None]:
        # Inference (eval mode, no autograd) reuses the expanded kernel until a parameter changes
        # in place (optimiser step, load_state_dict) or moves; then it costs one plain conv2d.
        if self.training or torch.is_grad_enabled():
            return self._conv_weights()
        key = self._cache_key()
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, self._conv_weights())
        return self._cache[1]

    def train(self, mode: bool = True):
        self._cache = None
        return super().train(mode)

    def _conv(self, x: Tensor) -> Tensor:
        """x: (B, C_in·|H_in|, H, W) → (B, C_out, |H|, H', W')."""
        k, p = self.kernel_size, self.padding
        if x.shape[-2] + 2 * p < k or x.shape[-1] + 2 * p < k:
            raise ValueError(
                f"kernel_size={k} (padding={p}) is too large for a {x.shape[-2]}×{x.shape[-1]} input"
            )
        weight, bias = self._cached_conv_weights()
        y = F.conv2d(x, weight, bias, padding=p)
        return y.view(x.shape[0], self.out_channels, self.group_size, *y.shape[-2:])

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"group_size={self.group_size}, padding={self.padding}, bias={self.bias is not None}"
        )


def _settings(module: nn.Module) -> tuple:
    """The plain values (numbers, strings, None, dtypes) and loose tensors among ``module``'s
    attributes, by name: what decides its output besides its parameters and buffers."""
    out = []
    for name, value in vars(module).items():
        if name in ("training", "_cache"):  # the mode clears the cache; the cache is not input
            continue
        if value is None or isinstance(value, (bool, int, float, str, torch.dtype)):
            out.append((name, value))
        elif isinstance(value, Tensor):
            out.append((name, value.data_ptr(), value._version, value.dtype, value.device))
    return tuple(out)


class LiftingConv2d(_WeightSharingConv):
    """Lifting convolution: an image to a function on (group × plane).

    (B, C_in, H, W) → (B, C_out, |H|, H', W'), with H' = H + 2·padding − k + 1. Output slice g
    is the input cross-correlated with the kernels R_g θ.

    Args:
        in_channels, out_channels: channel counts (the group axis is extra).
        kernel_size: k (square kernels).
        representation: a module returning an (|H|, k², k²) stack, e.g.
            ``FixedRepresentation(rotation_stack(k))`` or ``LearnedRepresentation(4, k * k)``.
        padding: zero padding on each side.
        bias: one bias per output channel, shared over the group and space.
    """

    def __init__(self, in_channels, out_channels, kernel_size, representation, padding=0, bias=True):
        super().__init__(
            in_channels, out_channels, kernel_size, representation, 1, padding, bias
        )

    def forward(self, x: Tensor) -> Tensor:
        _check.tensor("x", x, floating=True)
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"LiftingConv2d expects input (B, {self.in_channels}, H, W); got {tuple(x.shape)}"
            )
        return self._conv(x)


class GroupConv2d(_WeightSharingConv):
    """Group convolution: a function on (group × plane) to another.

    (B, C_in, |H|, H, W) → (B, C_out, |H|, H', W'). The representation acts jointly on the
    input-group axis and the kernel's pixels, so it holds (|H|, |H|·k², |H|·k²) matrices.

    Args:
        in_channels, out_channels: channel counts (the group axis is extra).
        kernel_size: k (square kernels).
        representation: a module returning an (|H|, |H|·k², |H|·k²) stack, e.g.
            ``FixedRepresentation(shift_twist_stack(k))`` or ``LearnedRepresentation(4, 4 * k * k)``.
        padding: zero padding on each side.
        bias: one bias per output channel, shared over the group and space.
    """

    def __init__(self, in_channels, out_channels, kernel_size, representation, padding=0, bias=True):
        super().__init__(
            in_channels, out_channels, kernel_size, representation,
            representation.size, padding, bias,
        )

    def forward(self, x: Tensor) -> Tensor:
        _check.tensor("x", x, floating=True)
        G = self.group_size
        if x.dim() != 5 or x.shape[1] != self.in_channels or x.shape[2] != G:
            raise ValueError(
                f"GroupConv2d expects input (B, {self.in_channels}, {G}, H, W) "
                f"(channels, group of size {G}, height, width); got {tuple(x.shape)}"
            )
        return self._conv(x.reshape(x.shape[0], self.in_channels * G, *x.shape[-2:]))


def representation_losses(model: nn.Module) -> tuple[Tensor, Tensor]:
    """Sum of the paper's regularisers over every learned stack in ``model``.

    Returns:
        two scalar tensors ``(normalisation, entropy)``, zero if the model has no learned stack.
    """
    norm, ent = [], []
    for module in model.modules():
        if isinstance(module, LearnedRepresentation):
            norm.append(module.normalization_loss())
            ent.append(module.entropy_loss())
    if not norm:
        zero = next(model.parameters()).new_zeros(())
        return zero, zero
    return torch.stack(norm).sum(), torch.stack(ent).sum()


@contextmanager
def shared_sinkhorn(model: nn.Module) -> Iterator[None]:
    """Within the block, every learned stack of ``model`` is normalised once, and once only.

    On entry, the logits of all :class:`LearnedRepresentation` modules that share a shape and
    Sinkhorn settings (d, n_iter, temperature, method, dtype, device) are concatenated and
    normalised in *one* Sinkhorn call -- the four group layers' (3, 100, 100) logits of a WSCNN
    become one (12, 100, 100) call -- and each module reuses its slice until the block ends:
    the forward pass and the entropy regulariser of a training step share one computation
    instead of running Sinkhorn twice per layer. A stack with a tolerance (``tol``) is
    normalised on its own, because its stopping test looks at its own stack only. The values
    are exactly those of calling each
    module on its own; gradients flow back through the shared result. Re-entering the block
    (nested) reuses the outer one's stacks. Parameters must not change inside the block.
    """
    reps = [m for m in model.modules() if isinstance(m, LearnedRepresentation)]
    if any(r._shared is not None for r in reps):  # an enclosing block already computed them
        yield
        return
    groups: dict[tuple, list[LearnedRepresentation]] = {}
    for r in reps:
        alone = None if r.tol is None else id(r)
        key = (r.dim, r.n_iter, float(r.temperature), r.method, r.tol, alone, r.logits.dtype,
               r.logits.device)
        groups.setdefault(key, []).append(r)
    try:
        for (_, n_iter, tau, method, tol, *_), members in groups.items():
            logits = [r.logits for r in members]
            soft = sinkhorn(torch.cat(logits) if len(logits) > 1 else logits[0], n_iter, tau,
                            method=method, tol=tol)
            for r, part in zip(members, soft.split([t.shape[0] for t in logits])):
                r._shared = part
        yield
    finally:
        for r in reps:
            r._shared = None


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Trainable parameters, split as the paper counts them.

    Returns:
        ``{"free": ..., "representation": ..., "total": ...}`` where "representation" counts the
        logits of every :class:`LearnedRepresentation` and "free" everything else.
    """
    rep = {id(p) for m in model.modules() if isinstance(m, LearnedRepresentation) for p in m.parameters()}
    counts = {"free": 0, "representation": 0}
    for p in model.parameters():
        if p.requires_grad:
            counts["representation" if id(p) in rep else "free"] += p.numel()
    counts["total"] = counts["free"] + counts["representation"]
    return counts
