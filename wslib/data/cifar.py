"""CIFAR-10 through torchvision (online only: it ships in no package)."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset

from .common import (CIFAR10_MEAN, CIFAR10_STD, DatasetUnavailable, data_folder, default_root,
                     epoch_generator, subset)

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
        self.flipped = (torch.rand(n, generator=epoch_generator(self.seed, epoch)) < 0.5
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

    root = data_folder(Path(root) if root is not None else default_root(), create=download)
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
    xtr, ytr = subset(xtr, ytr, train_size, seed)
    xte, yte = subset(xte, yte, test_size, seed + 1)
    if verbose:
        print(f"CIFAR-10 source: torchvision: {len(ytr)} train / {len(yte)} test images")
    return CIFAR10Dataset(xtr, ytr, flips=flips, seed=seed), CIFAR10Dataset(xte, yte), "torchvision"
