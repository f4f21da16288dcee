"""The paper's models: a 5-block MNIST network and a CIFAR-10 ResNet, each as CNN / GCNN / WSCNN.

The three variants differ only in their convolutions: a plain CNN uses ``nn.Conv2d``; a GCNN
uses :class:`~wslib.nn.LiftingConv2d` / :class:`~wslib.nn.GroupConv2d` with exact permutation
stacks (a :class:`~wslib.nn.FixedRepresentation`); a WSCNN uses the same layers with learned
Sinkhorn stacks (a :class:`~wslib.nn.LearnedRepresentation`), one stack per layer.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import _validate as _check
from .groups import rotation_stack, shift_twist_stack
from .nn import FixedRepresentation, GroupConv2d, LearnedRepresentation, LiftingConv2d

__all__ = [
    "CNN", "GCNN", "WSCNN", "GroupNet", "LayerNorm",
    "exact_representations", "learned_representations", "hybrid_representations",
    "CIFARResNet", "cifar_cnn", "cifar_gcnn", "cifar_wscnn",
]

# A factory returning the representation module of one layer: (kind, kernel_size) → module,
# kind being "lifting" or "group".
RepresentationFactory = Callable[[str, int], nn.Module]


def exact_representations(order: int = 4, flips: bool = False) -> RepresentationFactory:
    """Exact C_order (or D_order with flips) stacks: lifting rotations, group shift-twists."""

    def make(kind: str, kernel_size: int) -> nn.Module:
        stack = rotation_stack if kind == "lifting" else shift_twist_stack
        return FixedRepresentation(stack(kernel_size, order, flips))

    return make


def learned_representations(group_size: int = 4, n_iter: int = 20, **kwargs) -> RepresentationFactory:
    """Learned Sinkhorn stacks of ``group_size`` matrices (kwargs go to LearnedRepresentation)."""
    _check.integer("group_size", group_size, 1)

    def make(kind: str, kernel_size: int) -> nn.Module:
        dim = kernel_size**2 * (1 if kind == "lifting" else group_size)
        return LearnedRepresentation(group_size, dim, n_iter=n_iter, **kwargs)

    return make


def hybrid_representations(group_size: int = 4, n_iter: int = 20, **kwargs) -> RepresentationFactory:
    """A learned Sinkhorn stack in the lifting layer, the exact C_group_size shift-twist in every
    group layer. Not the paper's model: a teaching step between a G-CNN and a WSCNN, which asks
    only whether the lifting stack finds the rotations when the rest of the network is exact."""

    def make(kind: str, kernel_size: int) -> nn.Module:
        if kind == "lifting":
            return LearnedRepresentation(group_size, kernel_size**2, n_iter=n_iter, **kwargs)
        return FixedRepresentation(shift_twist_stack(kernel_size, group_size))

    return make


class LayerNorm(nn.Module):
    """Parameter-free layer norm over all but the batch axis: the paper's choice (its "instance
    norm"). One mean and variance per sample, over (C, H, W) or (C, |H|, H, W)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, x.shape[1:])


NORMS = ("layer", "batch")


def _batch_norm(channels: int, affine: bool, grouped: bool) -> nn.Module:
    """Batch norm per channel, statistics over everything else (batch, group, space).

    Acting identically on every group element and pixel keeps G-CNN features equivariant.
    """
    return (nn.BatchNorm3d if grouped else nn.BatchNorm2d)(channels, affine=affine)


def _check_sizes(**sizes: int) -> None:
    """Each keyword is a count that must be a positive integer (hidden=0 has no channels)."""
    for name, value in sizes.items():
        _check.integer(name, value, 1)


def _block_norm(kind: str, channels: int, grouped: bool) -> nn.Module:
    """The normalisation after each MNIST conv, parameter-free either way (the paper's counts).

    ``"layer"``: :class:`LayerNorm`, the paper's. ``"batch"``: :func:`_batch_norm` without affine
    parameters (running averages at eval time). Both act identically on every group element and
    pixel, so G-CNN features stay equivariant.
    """
    if kind == "layer":
        return LayerNorm()
    if kind == "batch":
        return _batch_norm(channels, affine=False, grouped=grouped)
    raise ValueError(f"norm must be one of {NORMS}; got {kind!r}")


# --- MNIST: five conv blocks, no padding, 28 → 24 → 20 → 16 → 12 → 8 -------------------------


class CNN(nn.Module):
    """The paper's plain CNN for 28×28 digits: 5 × (conv k=5 → norm → ReLU), pool, linear.

    (B, in_channels, 28, 28) → (B, num_classes) logits. With the defaults (64 channels) it has
    412,170 parameters, as in the paper. ``norm`` is ``"layer"`` (the paper's) or ``"batch"``
    (see ``_block_norm``; neither adds parameters).
    """

    def __init__(self, hidden: int = 64, in_channels: int = 1, num_classes: int = 10,
                 kernel_size: int = 5, num_blocks: int = 5, norm: str = "layer"):
        super().__init__()
        _check_sizes(hidden=hidden, in_channels=in_channels, num_classes=num_classes,
                     kernel_size=kernel_size, num_blocks=num_blocks)
        widths = [in_channels] + [hidden] * num_blocks
        self.convs = nn.ModuleList(nn.Conv2d(a, b, kernel_size) for a, b in zip(widths, widths[1:]))
        self.norms = nn.ModuleList(_block_norm(norm, hidden, grouped=False) for _ in self.convs)
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        for conv, norm in zip(self.convs, self.norms):
            x = F.relu(norm(conv(x)))
        return self.head(x.mean(dim=(-2, -1)))


class GroupNet(nn.Module):
    """A lifting layer and ``num_blocks − 1`` group convs, each → norm → ReLU; then
    global average pooling over (group, height, width) and a linear classifier.

    Pooling over the group makes the logits invariant to whatever the stacks encode.
    (B, in_channels, 28, 28) → (B, num_classes).

    Args:
        representations: a factory giving each layer its own stack (stacks are never shared
            between layers), e.g. :func:`exact_representations` or :func:`learned_representations`.
        norm: ``"layer"`` (the paper's) or ``"batch"``; see ``_block_norm``.
    """

    def __init__(self, representations: RepresentationFactory, hidden: int = 32,
                 in_channels: int = 1, num_classes: int = 10, kernel_size: int = 5,
                 num_blocks: int = 5, norm: str = "layer"):
        super().__init__()
        _check_sizes(hidden=hidden, in_channels=in_channels, num_classes=num_classes,
                     kernel_size=kernel_size, num_blocks=num_blocks)
        k = kernel_size
        layers = [LiftingConv2d(in_channels, hidden, k, representations("lifting", k))]
        layers += [GroupConv2d(hidden, hidden, k, representations("group", k))
                   for _ in range(num_blocks - 1)]
        self.convs = nn.ModuleList(layers)
        self.norms = nn.ModuleList(_block_norm(norm, hidden, grouped=True) for _ in layers)
        self.head = nn.Linear(hidden, num_classes)

    def features(self, x: Tensor) -> Tensor:
        """(B, C_in, H, W) → (B, hidden, |H|, H', W'): the last group feature map."""
        for conv, norm in zip(self.convs, self.norms):
            x = F.relu(norm(conv(x)))
        return x

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x).mean(dim=(-3, -2, -1)))


class GCNN(GroupNet):
    """The paper's G-CNN: :class:`GroupNet` with exact C4 stacks (or D4 with ``flips=True``).

    With 32 hidden channels (default, the same layout as the WSCNN) it has 410,890 parameters.
    The paper's table lists "103 K" for its GCNN, which is this model with ``hidden=16``
    (103,050 parameters); the paper is inconsistent there, and we default to 32.
    """

    def __init__(self, hidden: int = 32, order: int = 4, flips: bool = False, **kwargs):
        super().__init__(exact_representations(order, flips), hidden=hidden, **kwargs)


class WSCNN(GroupNet):
    """The paper's weight-sharing CNN: :class:`GroupNet` with a learned stack in every layer.

    With the defaults (32 hidden channels, |H| = 4, k = 5) it has 410,890 free parameters plus
    121,875 representation logits (lifting 3·25², each of four group layers 3·100²).
    Extra kwargs (``n_iter``, ``fix_identity``, ``temperature``) go to each
    :class:`~wslib.nn.LearnedRepresentation`.
    """

    def __init__(self, hidden: int = 32, group_size: int = 4, n_iter: int = 20,
                 in_channels: int = 1, num_classes: int = 10, kernel_size: int = 5,
                 num_blocks: int = 5, norm: str = "layer", **rep_kwargs):
        super().__init__(learned_representations(group_size, n_iter, **rep_kwargs),
                         hidden=hidden, in_channels=in_channels, num_classes=num_classes,
                         kernel_size=kernel_size, num_blocks=num_blocks, norm=norm)


# --- CIFAR-10: a small ResNet with k = 7 "same" convolutions ----------------------------------


def _max_pool(x: Tensor) -> Tensor:
    """2×2 spatial max-pool; a group axis (5-D input) is pooled per element."""
    if x.dim() == 5:
        b, c, g, h, w = x.shape
        return F.max_pool2d(x.reshape(b, c * g, h, w), 2).view(b, c, g, h // 2, w // 2)
    return F.max_pool2d(x, 2)


class _ResBlock(nn.Module):
    """conv → norm → ReLU → conv, plus a (1×1 if widths differ) shortcut; then norm, pool, ReLU."""

    def __init__(self, conv: Callable[[int, int], nn.Module], c_in: int, c_out: int, grouped: bool):
        super().__init__()
        self.conv1, self.conv2 = conv(c_in, c_out), conv(c_out, c_out)
        self.norm1 = _batch_norm(c_out, affine=False, grouped=grouped)
        self.norm2 = _batch_norm(c_out, affine=True, grouped=grouped)
        # A 1×1 conv per group element (Conv3d with a 1×1×1 kernel over (group, H, W)) mixes
        # channels only, so it commutes with any permutation of the group axis.
        shortcut = nn.Conv3d if grouped else nn.Conv2d
        self.shortcut = shortcut(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv2(F.relu(self.norm1(self.conv1(x))))
        return F.relu(_max_pool(self.norm2(y + self.shortcut(x))))


class CIFARResNet(nn.Module):
    """The paper's CIFAR-10 ResNet: stem (k=7) → two residual blocks (w→w, w→2w) → global
    average pool (over group and space) → Linear(2w→256, no bias) → BN → ReLU → Dropout(0.3)
    → Linear(256→10). (B, 3, 32, 32) → (B, 10).

    The paper's parameter counts fix three affine norms (stem and after each block); the norm
    between a block's two convs is parameter-free. Build the variants with :func:`cifar_cnn`,
    :func:`cifar_gcnn`, :func:`cifar_wscnn`.

    Args:
        width: w, channels of the stem and first block.
        representations: ``None`` for a plain CNN, else a factory for each layer's stack.
    """

    def __init__(self, width: int = 32, representations: RepresentationFactory | None = None,
                 in_channels: int = 3, num_classes: int = 10, kernel_size: int = 7):
        super().__init__()
        _check_sizes(width=width, in_channels=in_channels, num_classes=num_classes,
                     kernel_size=kernel_size)
        k, p = kernel_size, kernel_size // 2
        grouped = representations is not None
        if grouped:
            self.stem = LiftingConv2d(in_channels, width, k, representations("lifting", k), padding=p)
            conv = lambda a, b: GroupConv2d(a, b, k, representations("group", k), padding=p)  # noqa: E731
        else:
            self.stem = nn.Conv2d(in_channels, width, k, padding=p)
            conv = lambda a, b: nn.Conv2d(a, b, k, padding=p)  # noqa: E731
        self.stem_norm = _batch_norm(width, affine=True, grouped=grouped)
        self.blocks = nn.Sequential(
            _ResBlock(conv, width, width, grouped), _ResBlock(conv, width, 2 * width, grouped)
        )
        self.head = nn.Sequential(
            nn.Linear(2 * width, 256, bias=False), nn.BatchNorm1d(256), nn.ReLU(),
            nn.Dropout(0.3), nn.Linear(256, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        x = self.blocks(F.relu(self.stem_norm(self.stem(x))))
        pool_dims = tuple(range(2, x.dim()))  # (group,) height, width
        return self.head(x.mean(dim=pool_dims))


def cifar_cnn(width: int = 32) -> CIFARResNet:
    """Plain CIFAR ResNet; widths 32 / 64 / 128 have 428,170 / 1,660,170 / 6,544,906 parameters."""
    return CIFARResNet(width)


def cifar_gcnn(width: int = 32, order: int = 4, flips: bool = False) -> CIFARResNet:
    """C4 G-CNN ResNet (1,632,394 parameters at width 32)."""
    return CIFARResNet(width, exact_representations(order, flips))


def cifar_wscnn(width: int = 32, group_size: int = 4, n_iter: int = 20, **rep_kwargs) -> CIFARResNet:
    """Learned weight-sharing ResNet (1,632,394 free + 468,195 representation parameters)."""
    return CIFARResNet(width, learned_representations(group_size, n_iter, **rep_kwargs))
