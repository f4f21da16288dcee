"""Plotting for the book: matrices, stacks and kernels, with one colour map throughout.

Every matrix in the book -- permutations, doubly stochastic matrices, learned stacks -- is drawn
with :data:`MATRIX_CMAP` on the range [0, 1] unless a function says otherwise, so that a reader
can compare any two figures. Kernels (signed weights) use :data:`KERNEL_CMAP`, centred on zero.
"""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

__all__ = ["MATRIX_CMAP", "KERNEL_CMAP", "plot_matrix", "plot_stack", "plot_kernels"]

MATRIX_CMAP = "viridis"
KERNEL_CMAP = "RdBu_r"


def _numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def plot_matrix(ax, matrix, title: str | None = None, vmin: float = 0.0, vmax: float = 1.0,
                ticks: bool = False, colorbar: bool = False):
    """Draw one matrix on ``ax`` with the book's matrix colour map; returns the image.

    Args:
        ax: a matplotlib axis.
        matrix: (n, m) tensor or array.
        title: panel title.
        vmin, vmax: colour range (default [0, 1], right for (doubly) stochastic matrices).
        ticks: label rows/columns with their indices; otherwise hide ticks.
        colorbar: add a colour bar beside the panel.
    """
    m = _numpy(matrix)
    im = ax.imshow(m, cmap=MATRIX_CMAP, vmin=vmin, vmax=vmax, interpolation="nearest")
    if title:
        ax.set_title(title)
    if ticks:
        ax.set_xticks(range(m.shape[1]))
        ax.set_yticks(range(m.shape[0]))
        ax.set_xlabel("column (input index)")
        ax.set_ylabel("row (output index)")
    else:
        ax.set_xticks([])
        ax.set_yticks([])
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return im


def plot_stack(stack, titles: Sequence[str] | None = None, suptitle: str | None = None,
               vmin: float = 0.0, vmax: float = 1.0, panel_size: float = 2.2, axes=None):
    """Draw a stack of matrices side by side, one panel each, with a shared colour bar.

    Args:
        stack: (n, d, d) tensor or array.
        titles: one title per panel (default ``R_1 .. R_n``).
        suptitle: a title for the whole row.
        axes: optional sequence of n axes to draw into (else a new figure is made).

    Returns:
        the matplotlib figure.
    """
    s = _numpy(stack)
    n = s.shape[0]
    titles = titles if titles is not None else [f"$R_{{{i + 1}}}$" for i in range(n)]
    if axes is None:
        fig, axes = plt.subplots(1, n, figsize=(panel_size * n + 0.8, panel_size + 0.6),
                                 squeeze=False, layout="constrained")
        axes = axes[0]
    fig = axes[0].figure
    for ax, mat, title in zip(axes, s, titles):
        im = plot_matrix(ax, mat, title, vmin, vmax)
    fig.colorbar(im, ax=list(axes), shrink=0.8)
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def plot_kernels(kernels, row_titles: Sequence[str] | None = None,
                 col_titles: Sequence[str] | None = None, suptitle: str | None = None,
                 panel_size: float = 1.2):
    """Draw a grid of k×k kernels, e.g. the |H| × channels kernel stack of a lifting layer.

    Args:
        kernels: (rows, cols, k, k) tensor or array; colours are centred on zero and shared.
        row_titles, col_titles: labels for rows (e.g. group elements) and columns (channels).

    Returns:
        the matplotlib figure.
    """
    k = _numpy(kernels)
    rows, cols = k.shape[:2]
    lim = float(np.abs(k).max()) or 1.0
    fig, axes = plt.subplots(rows, cols, figsize=(panel_size * cols + 1.0, panel_size * rows + 0.5),
                             squeeze=False, layout="constrained")
    for r in range(rows):
        for c in range(cols):
            ax = axes[r, c]
            im = ax.imshow(k[r, c], cmap=KERNEL_CMAP, vmin=-lim, vmax=lim, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0 and col_titles is not None:
                ax.set_title(col_titles[c], fontsize=9)
            if c == 0 and row_titles is not None:
                ax.set_ylabel(row_titles[r], fontsize=9)
    fig.colorbar(im, ax=axes, shrink=0.8, label="weight")
    if suptitle:
        fig.suptitle(suptitle)
    return fig
