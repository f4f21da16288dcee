"""What every dataset module shares: normalisation constants, the data folder, seeded epochs."""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


class DatasetUnavailable(ValueError):
    """A dataset could not be found or downloaded; the message says what to do instead."""


def default_root() -> Path:
    """Where torchvision datasets live: ``$WSLIB_DATA`` if set, else ``~/.cache/wslib``."""
    return Path(os.environ.get("WSLIB_DATA", Path.home() / ".cache" / "wslib")).expanduser()


def data_folder(path: str | Path, create: bool = True) -> Path:
    """``path`` as a usable data folder, created with its parents if missing (``create``).

    Raises:
        DatasetUnavailable: ``path`` (or a folder above it) is a file, or the folder cannot be
            created; the message names it and says what to do, so ``source="auto"`` can fall
            back to the next source.
    """
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise DatasetUnavailable(f"the data folder {path} is a file, not a folder: point "
                                 "WSLIB_DATA (or root=) at a folder")
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise DatasetUnavailable(
                f"the data folder {path} cannot be created ({err.strerror or err}): point "
                "WSLIB_DATA (or root=) at a writable folder") from err
    return path


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    # A pure function of (seed, epoch): the randomness of any epoch can be regenerated alone.
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def subset(images: Tensor, labels: Tensor, size: int | None, seed: int) -> tuple[Tensor, Tensor]:
    """A seeded random subset of ``size`` items (all of them when ``size`` is None or too big)."""
    if size is None or size >= len(labels):
        return images, labels
    if size < 1:
        raise ValueError(f"a subset size must be >= 1; got {size}")
    idx = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))[:size]
    return images[idx], labels[idx]
