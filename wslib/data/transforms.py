"""Rotated and scaled digits, as in the paper's experiments.

Training images get a fresh random angle (or scale) every epoch, the test set is transformed once
with seeded parameters; bilinear interpolation, zeros outside the image, then normalisation with
mean 0.1307 and std 0.3081. Randomness is a pure function of ``(seed, epoch)``, which is what
makes resumed training bit-identical (see :mod:`wslib.train`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from .. import _validate as _check
from .common import MNIST_MEAN, MNIST_STD, epoch_generator, subset
from .mnist import ImageData, load_mnist

def _check_images(images: Tensor, params: Tensor, name: str) -> None:
    if images.dim() != 4:
        raise ValueError(f"images must have shape (N, C, H, W); got {tuple(images.shape)}")
    if params.shape != (images.shape[0],):
        raise ValueError(
            f"need one {name} per image: expected shape ({images.shape[0]},), got {tuple(params.shape)}"
        )


def rotate_images(images: Tensor, angles: Tensor | float) -> Tensor:
    """Rotate each image about its centre by its own angle, bilinearly, with zeros outside.

    The sense matches :mod:`wslib.groups`: 90° equals ``torch.rot90(x, 1, dims=(-2, -1))`` (up to
    rounding), a quarter turn counter-clockwise as ``imshow`` draws an array.

    Args:
        images: (N, C, H, W).
        angles: (N,) angles in degrees, or one float for all images.

    Returns:
        (N, C, H, W) rotated images, same dtype and device.
    """
    _check.tensor("images", images, dims=4, floating=True)
    if not isinstance(angles, Tensor):
        angles = torch.full((images.shape[0],), _check.number("angles", angles))
    _check_images(images, angles, "angle")
    theta = torch.deg2rad(angles.to(device=images.device, dtype=images.dtype))
    c, s = torch.cos(theta), torch.sin(theta)
    zero = torch.zeros_like(c)
    # affine_grid maps each output location to the input location it samples; sampling at the
    # output point rotated by -θ rotates the picture by +θ. align_corners=False keeps pixel
    # centres symmetric about 0, so multiples of 90° land exactly on pixel centres.
    affine = torch.stack([torch.stack([c, -s, zero], -1), torch.stack([s, c, zero], -1)], -2)
    grid = F.affine_grid(affine, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def scale_images(images: Tensor, scales: Tensor | float) -> Tensor:
    """Shrink each image about its centre by its own factor and zero-pad back to full size.

    Each image is resized (bilinear, antialiased) to ``round(s·H) × round(s·W)`` and pasted in
    the middle of a zero canvas of the original size, as in the paper's scaled MNIST.

    Args:
        images: (N, C, H, W).
        scales: (N,) factors in (0, 1], or one float for all images.

    Returns:
        (N, C, H, W) images, same dtype and device.
    """
    _check.tensor("images", images, dims=4, floating=True)
    if not isinstance(scales, Tensor):
        scales = torch.full((images.shape[0],), _check.number("scales", scales))
    _check_images(images, scales, "scale")
    if not bool(((scales > 0) & (scales <= 1)).all()):
        raise ValueError("scales must lie in (0, 1]: images are shrunk and zero-padded, never enlarged")
    n, _, h, w = images.shape
    out = torch.zeros_like(images)
    sizes_h = torch.clamp((scales * h).round().long(), min=1).tolist()
    sizes_w = torch.clamp((scales * w).round().long(), min=1).tolist()
    # Images of the same target size are resized together (at most H distinct sizes).
    for size in sorted(set(zip(sizes_h, sizes_w))):
        idx = [i for i in range(n) if (sizes_h[i], sizes_w[i]) == size]
        small = F.interpolate(images[idx], size=size, mode="bilinear", antialias=True,
                              align_corners=False)
        top, left = (h - size[0]) // 2, (w - size[1]) // 2
        out[idx, :, top:top + size[0], left:left + size[1]] = small
    return out


# --- transformed datasets ---------------------------------------------------------------------


class TransformedDataset(Dataset):
    """Images with a random per-image transform: resampled each epoch (train) or fixed (test).

    Subclasses say how to draw the per-image parameters and how to apply them. The transformed
    images of the current epoch are computed in one vectorised pass by :meth:`set_epoch` (the
    training loop calls it before each epoch), so ``__getitem__`` is a plain lookup.

    Args:
        images: (N, C, H, W) float images in [0, 1] (before normalisation).
        labels: (N,) int64 labels.
        train: resample the parameters every epoch (True) or draw them once (False).
        classes: transform only images whose label is in this set; others keep the identity
            parameter. ``None`` transforms every image.
        seed: the parameters of epoch e are a function of (seed, e) only.
        mean, std: normalisation applied after the transform (``None`` to skip).
    """

    identity: float = 0.0

    def __init__(self, images: Tensor, labels: Tensor, train: bool = True,
                 classes: Sequence[int] | None = None, seed: int = 0,
                 mean: float | Sequence[float] | None = MNIST_MEAN,
                 std: float | Sequence[float] | None = MNIST_STD):
        _check.tensor("images", images)
        _check.tensor("labels", labels)
        if images.dim() != 4:
            raise ValueError(f"images must have shape (N, C, H, W); got {tuple(images.shape)}")
        if labels.shape != (images.shape[0],):
            raise ValueError(
                f"labels must have shape ({images.shape[0]},) to match the images; got {tuple(labels.shape)}"
            )
        self.images, self.labels = images.float(), labels.long()
        self.train, self.seed = train, seed
        self.classes = None if classes is None else sorted(int(c) for c in classes)
        if (mean is None) != (std is None):
            raise ValueError("give both mean and std, or neither")
        c = images.shape[1]
        self._mean = None if mean is None else torch.as_tensor(mean, dtype=torch.float32).reshape(-1, 1, 1).expand(c, 1, 1)
        self._std = None if std is None else torch.as_tensor(std, dtype=torch.float32).reshape(-1, 1, 1).expand(c, 1, 1)
        self.epoch: int | None = None
        self.set_epoch(0)

    def sample_parameters(self, generator: torch.Generator, n: int) -> Tensor:
        """(n,) per-image parameters drawn with ``generator``."""
        raise NotImplementedError

    def apply(self, images: Tensor, params: Tensor) -> Tensor:
        """Transform (N, C, H, W) images by (N,) parameters."""
        raise NotImplementedError

    def set_epoch(self, epoch: int) -> None:
        """Draw (train) or keep (test) the per-image parameters and transform all images."""
        epoch = epoch if self.train else 0
        if epoch == self.epoch:
            return
        params = self.sample_parameters(epoch_generator(self.seed, epoch), len(self.labels))
        if self.classes is not None:
            keep = ~torch.isin(self.labels, torch.tensor(self.classes))
            params = torch.where(keep, torch.full_like(params, self.identity), params)
        self.params = params
        out = torch.empty_like(self.images)
        for start in range(0, len(out), 4096):  # bounded peak memory for 60,000 digits
            sl = slice(start, start + 4096)
            out[sl] = self.apply(self.images[sl], params[sl])
        if self._mean is not None:
            out = (out - self._mean) / self._std
        self.current, self.epoch = out, epoch

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        return self.current[i], self.labels[i]


class RotatedDataset(TransformedDataset):
    """Digits rotated by angles drawn uniformly from ``angle_range`` degrees, as in the paper.

    ``angle_range=(0, 360)`` is the paper's rotated MNIST; ``(0, θ)`` its partial rotations.
    The angles in use are in ``self.params`` (N,). Other arguments: see
    :class:`TransformedDataset`.
    """

    def __init__(self, images: Tensor, labels: Tensor, angle_range: tuple[float, float] = (0.0, 360.0),
                 **kwargs):
        self.angle_range = _check.pair("angle_range", angle_range)
        super().__init__(images, labels, **kwargs)

    def sample_parameters(self, generator: torch.Generator, n: int) -> Tensor:
        lo, hi = self.angle_range
        return lo + (hi - lo) * torch.rand(n, generator=generator)

    def apply(self, images: Tensor, params: Tensor) -> Tensor:
        return rotate_images(images, params)


class ScaledDataset(TransformedDataset):
    """Digits shrunk by factors drawn uniformly from ``scale_range`` and zero-padded, as in the paper.

    The factors in use are in ``self.params`` (N,). Other arguments: see
    :class:`TransformedDataset`.
    """

    identity = 1.0

    def __init__(self, images: Tensor, labels: Tensor, scale_range: tuple[float, float] = (0.3, 1.0),
                 **kwargs):
        lo, hi = _check.pair("scale_range", scale_range)
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"scale_range must satisfy 0 < low <= high <= 1; got {scale_range}")
        self.scale_range = (lo, hi)
        super().__init__(images, labels, **kwargs)

    def sample_parameters(self, generator: torch.Generator, n: int) -> Tensor:
        lo, hi = self.scale_range
        return lo + (hi - lo) * torch.rand(n, generator=generator)

    def apply(self, images: Tensor, params: Tensor) -> Tensor:
        return scale_images(images, params)


def _mnist_pair(cls, data: ImageData | None, source: str, root, download: bool,
                train_size: int | None, test_size: int | None, seed: int, **kwargs):
    data = data if data is not None else load_mnist(source, root, download)
    tr = subset(data.train_images, data.train_labels, train_size, seed)
    te = subset(data.test_images, data.test_labels, test_size, seed + 1)
    # Train and test draw their parameters from different seeds, so no test angle repeats a
    # training angle by construction.
    train = cls(*tr, train=True, seed=seed, **kwargs)
    test = cls(*te, train=False, seed=seed + 10_000, **kwargs)
    return train, test, data.source


def rotated_mnist(
    angle_range: tuple[float, float] = (0.0, 360.0),
    classes: Sequence[int] | None = None,
    source: str = "auto",
    root: str | Path | None = None,
    download: bool = True,
    train_size: int | None = None,
    test_size: int | None = None,
    seed: int = 0,
    data: ImageData | None = None,
) -> tuple[RotatedDataset, RotatedDataset, str]:
    """The paper's rotated MNIST: fresh angles each training epoch, seeded fixed test angles.

    Args:
        angle_range: angles in degrees drawn uniformly from it; ``(0, θ)`` for partial rotations.
        classes: rotate only these digit classes (others stay upright); ``None`` rotates all.
        source, root, download: see :func:`load_mnist` (ignored when ``data`` is given).
        train_size, test_size: use a seeded random subset of this many images (``None``: all).
        seed: seeds the subsets and all angles.
        data: already loaded :class:`ImageData` (skips loading).

    Returns:
        ``(train, test, source)``: two :class:`RotatedDataset` yielding ((1, 28, 28) normalised
        image, label), and the name of the MNIST source used.
    """
    angle_range = _check.pair("angle_range", angle_range)  # before the digits are loaded
    return _mnist_pair(RotatedDataset, data, source, root, download, train_size, test_size, seed,
                       angle_range=angle_range, classes=classes)


def scaled_mnist(
    scale_range: tuple[float, float] = (0.3, 1.0),
    classes: Sequence[int] | None = None,
    source: str = "auto",
    root: str | Path | None = None,
    download: bool = True,
    train_size: int | None = None,
    test_size: int | None = None,
    seed: int = 0,
    data: ImageData | None = None,
) -> tuple[ScaledDataset, ScaledDataset, str]:
    """The paper's scaled MNIST: digits shrunk by U[0.3, 1.0] and zero-padded to 28×28.

    Arguments and return value as in :func:`rotated_mnist`, with scale factors for angles.
    """
    scale_range = _check.pair("scale_range", scale_range)  # before the digits are loaded
    return _mnist_pair(ScaledDataset, data, source, root, download, train_size, test_size, seed,
                       scale_range=scale_range, classes=classes)
