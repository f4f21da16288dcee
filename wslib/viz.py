"""Plotting for the book: matrices, stacks and kernels, with one colour map throughout.

Every matrix in the book -- permutations, doubly stochastic matrices, learned stacks -- is drawn
with :data:`MATRIX_CMAP` on the range [0, 1] unless a function says otherwise, so that a reader
can compare any two figures. Kernels (signed weights) use :data:`KERNEL_CMAP`, centred on zero.

Importing this module applies the book's figure style (:func:`use_book_style`): figures are
drawn at :data:`DPI` and text is large enough to stay legible (at least 9 pt) once a figure of
at most :data:`PAGE_WIDTH_IN` inches is shrunk to the page's 688 px column; see
:func:`smallest_font_on_page`.
"""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from .sinkhorn import doubly_stochastic_error, sinkhorn

__all__ = [
    "MATRIX_CMAP",
    "KERNEL_CMAP",
    "DPI",
    "PAGE_WIDTH_IN",
    "use_book_style",
    "smallest_font_on_page",
    "tex",
    "draw_element",
    "draw_cayley_table",
    "draw_sinkhorn",
    "plot_matrix",
    "plot_stack",
    "plot_kernels",
    "plot_stack_vs_group",
    "plot_kernel_stack",
    "plot_history",
    "plot_coefficients",
    "plot_hardening",
]

MATRIX_CMAP = "viridis"
KERNEL_CMAP = "RdBu_r"
DPI = 150  # crisp when the page shrinks a figure to its column
PAGE_WIDTH_IN = 7.6  # the widest figure whose 10-pt tick labels stay >= 9 pt on the page
PAGE_PX = 688  # width of the book's text column in CSS pixels (96 per inch)

_BOOK_STYLE = {
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "font.size": 11,
    "axes.titlesize": 11,
    "axes.labelsize": 11,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "legend.fontsize": 10,
    "figure.titlesize": 12,
    "figure.labelsize": 11,
}


def use_book_style() -> None:
    """Set matplotlib's defaults to the book's style (dpi and font sizes); idempotent."""
    plt.rcParams.update(_BOOK_STYLE)


def smallest_font_on_page(fig, page_px: int = PAGE_PX) -> float:
    """The size, in points as a reader sees them, of the smallest visible text in ``fig``.

    The page shows a figure's PNG at its natural size (one image pixel per CSS pixel, 96 per
    inch) unless it is wider than the ``page_px`` column, when it is shrunk to fit. A font of
    ``s`` points in a figure ``W`` inches wide drawn at ``dpi`` therefore appears at
    ``s * min(dpi, page_px / W) / 96`` points. Empty strings and invisible artists are ignored.
    """
    scale = min(fig.dpi, page_px / fig.get_figwidth()) / 96.0
    sizes = [t.get_fontsize() for t in fig.findobj(plt.Text)
             if t.get_visible() and t.get_text().strip()]
    return min(sizes) * scale if sizes else float("inf")


use_book_style()


def _page_size(width: float, height: float) -> tuple[float, float]:
    """(width, height) in inches, scaled down together so the width fits the page."""
    scale = min(1.0, PAGE_WIDTH_IN / width)
    return width * scale, height * scale


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
        size = _page_size(panel_size * n + 0.8, panel_size + 0.9)
        fig, axes = plt.subplots(1, n, figsize=size, squeeze=False, layout="constrained")
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
    size = _page_size(panel_size * cols + 1.0, panel_size * rows + 0.5)
    fig, axes = plt.subplots(rows, cols, figsize=size, squeeze=False, layout="constrained")
    for r in range(rows):
        for c in range(cols):
            ax = axes[r, c]
            im = ax.imshow(k[r, c], cmap=KERNEL_CMAP, vmin=-lim, vmax=lim, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0 and col_titles is not None:
                ax.set_title(col_titles[c], fontsize=10)
            if c == 0 and row_titles is not None:
                ax.set_ylabel(row_titles[r], fontsize=10)
    fig.colorbar(im, ax=axes, shrink=0.8, label="weight")
    if suptitle:
        fig.suptitle(suptitle)
    return fig


# --- groups and Sinkhorn, as chapters 1 and 2 draw them ------------------------------------------


def tex(name: str) -> str:
    """An element name such as ``'r³s'`` as matplotlib mathtext, ``'r^{3}s'``."""
    return name.replace("²", "^{2}").replace("³", "^{3}")


def draw_cayley_table(ax, group) -> None:
    """Draw a finite group's Cayley table on ``ax``: cell (g, h) coloured and labelled with gh.

    Args:
        ax: a matplotlib axis.
        group: a :class:`wslib.groups.FiniteGroup` (its ``table`` is (|G|, |G|) indices, 0 = e).
    """
    n = group.order
    table = group.table.numpy()
    ax.imshow(table, cmap=MATRIX_CMAP, vmin=0, vmax=n - 1)
    for g in range(n):
        for h in range(n):
            gh = int(table[g, h])
            ax.text(h, g, f"${tex(group.element_names[gh])}$", ha="center", va="center",
                    color="white" if gh < n / 2 else "black")
    labels = [f"${tex(name)}$" for name in group.element_names]
    ax.set_xticks(range(n), labels)
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("right factor $h$ (applied first)")
    ax.set_ylabel("left factor $g$")
    ax.set_title(f"${group.name[0]}_{group.name[1:]}$: entry $(g, h)$ is $gh$")


def draw_element(axes, group, g: int, kernel) -> None:
    """Three panels for one group element acting on a kernel: w, the matrix R_g, and R_g w.

    Args:
        axes: three matplotlib axes.
        group: a :class:`wslib.groups.FiniteGroup` whose ``grid_representation(k)`` is
            (|G|, k², k²).
        g: the element's index.
        kernel: a (k, k) tensor; for k <= 5 each pixel is labelled with its row-major index,
            and the right panel shows where each index went.
    """
    w = torch.as_tensor(kernel, dtype=torch.float32)
    k = w.shape[-1]
    R = group.grid_representation(k)[g]
    moved = (R @ w.flatten()).view(k, k)
    labels = (R @ torch.arange(k * k, dtype=torch.float32)).view(k, k)  # where each pixel went
    name = tex(group.element_names[g])
    lim = float(w.abs().max()) or 1.0
    panels = [(axes[0], w, torch.arange(k * k).view(k, k), "kernel $w$"),
              (axes[2], moved, labels, f"$R_{{{name}}}w$")]
    for ax, img, idx, title in panels:
        ax.imshow(img.numpy(), cmap=KERNEL_CMAP, vmin=-lim, vmax=lim)
        if k <= 5:
            for i in range(k):
                for j in range(k):
                    dark = abs(float(img[i, j])) > 0.6 * lim  # white text on saturated cells
                    ax.text(j, i, int(idx[i, j]), ha="center", va="center",
                            color="white" if dark else "black")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set(xlabel="pixel column", ylabel="pixel row", title=title)
    plot_matrix(axes[1], R, title=f"$R_{{{name}}}$ ({k * k}×{k * k})", ticks=k <= 3)
    if k > 3:
        axes[1].set(xlabel="input pixel $j$", ylabel="output pixel $i$")


def draw_sinkhorn(ax_matrix, ax_sums, logits, tau: float, n_iter: int) -> None:
    """Sinkhorn of ``logits`` at temperature ``tau`` after ``n_iter`` iterations, and its row sums.

    Args:
        ax_matrix: axis for the (n, n) matrix, titled with its doubly stochastic error.
        ax_sums: axis for a bar chart of the row sums (``None``: no bar chart). The columns sum
            to exactly 1 after every iteration, so only the rows can be off.
        logits: (n, n) tensor.
    """
    S = sinkhorn(logits, n_iter=n_iter, temperature=tau)
    error = float(doubly_stochastic_error(S))
    plot_matrix(ax_matrix, S, title=f"$\\tau$ = {tau:g}, K = {n_iter}\nerror {error:.1e}")
    ax_matrix.set(xlabel="column $j$", ylabel="row $i$")
    if ax_sums is not None:
        n = S.shape[-1]
        sums = _numpy(S.sum(-1))
        ax_sums.barh(range(n), sums, color="tab:blue")
        ax_sums.axvline(1.0, color="black", lw=1)
        ax_sums.set_xlim(0, max(2.0, float(sums.max()) + 0.1))
        ax_sums.invert_yaxis()
        ax_sums.set(xlabel="row sum", title="row sums (columns: exactly 1)")


# --- learned stacks, training runs and coefficient fits ----------------------------------------


def plot_stack_vs_group(learned, exact, learned_titles: Sequence[str] | None = None,
                        exact_titles: Sequence[str] | None = None, suptitle: str | None = None,
                        panel_size: float = 2.0):
    """A learned stack (top row) above the exact group matrices it should match (bottom row).

    Args:
        learned: (n, d, d) learned matrices.
        exact: (n, d, d) the group's matrices, in the order to compare with (e.g. each learned
            matrix's nearest element, from :func:`wslib.analysis.recovery`).
        learned_titles, exact_titles: panel titles (defaults ``learned R_1..R_n`` /
            ``exact P_1..P_n``, numbered from 1 as in :func:`plot_stack`).

    Returns:
        the matplotlib figure (both rows on the [0, 1] matrix colour scale).
    """
    a, b = _numpy(learned), _numpy(exact)
    if a.shape != b.shape or a.ndim != 3:
        raise ValueError(f"learned and exact must both be (n, d, d) stacks; got {a.shape} and {b.shape}")
    n = a.shape[0]
    size = _page_size(panel_size * n + 0.8, 2 * panel_size + 1.2)
    fig, axes = plt.subplots(2, n, figsize=size, squeeze=False, layout="constrained")
    lt = learned_titles or [f"learned $R_{{{i + 1}}}$" for i in range(n)]
    et = exact_titles or [f"exact $P_{{{i + 1}}}$" for i in range(n)]
    for i in range(n):
        im = plot_matrix(axes[0, i], a[i], lt[i])
        plot_matrix(axes[1, i], b[i], et[i])
    axes[0, 0].set_ylabel("learned")
    axes[1, 0].set_ylabel("exact group")
    fig.colorbar(im, ax=axes, shrink=0.8, label="entry")
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def plot_kernel_stack(kernel_stack, element_names: Sequence[str] | None = None,
                      suptitle: str | None = None, max_channels: int = 8):
    """The transformed kernels of a layer as an |H| × channels grid (rows: group elements).

    Args:
        kernel_stack: (C, |H|, k, k) or (C, |H|, k²) -- e.g. ``SharedKernelLayer.kernel_stack()``
            or a lifting layer's expanded kernel viewed as (C_out, |H|, k, k).
        element_names: one label per row (default ``R_0 .. R_{|H|-1}``).
        max_channels: draw at most this many channels (columns).
    """
    k = _numpy(kernel_stack)
    if k.ndim == 3:
        side = int(round(np.sqrt(k.shape[-1])))
        if side * side != k.shape[-1]:
            raise ValueError(f"kernels of {k.shape[-1]} values are not square; pass (C, |H|, k, k)")
        k = k.reshape(*k.shape[:2], side, side)
    if k.ndim != 4:
        raise ValueError(f"kernel_stack must be (C, |H|, k, k) or (C, |H|, k²); got {k.shape}")
    k = k[:max_channels].transpose(1, 0, 2, 3)  # (|H|, C, k, k): one row per element
    rows = list(element_names) if element_names is not None else [f"$R_{{{i}}}$" for i in range(k.shape[0])]
    cols = [f"channel {c}" for c in range(k.shape[1])]
    return plot_kernels(k, rows, cols, suptitle)


def plot_history(history, title: str | None = None, regularisers: bool = False):
    """Training curves from a :class:`wslib.train.History`: loss (log scale) and accuracy.

    Args:
        history: a History (or anything with the same list attributes).
        title: the figure's title.
        regularisers: add a third panel with the normalisation and entropy terms.

    Returns:
        the matplotlib figure.
    """
    epochs = np.asarray(history.epoch)
    n = 3 if regularisers else 2
    fig, axes = plt.subplots(1, n, figsize=_page_size(3.6 * n, 3.2), layout="constrained")
    ax = axes[0]
    ax.plot(epochs, history.train_loss, label="train")
    if np.isfinite(history.test_loss).any():
        ax.plot(epochs, history.test_loss, label="test")
    ax.set_yscale("log")
    ax.set(xlabel="epoch", ylabel="task loss", title="loss")
    ax.legend()
    ax = axes[1]
    ax.plot(epochs, history.train_acc, label="train")
    if np.isfinite(history.test_acc).any():
        ax.plot(epochs, history.test_acc, label="test")
    ax.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0, 1.02))
    ax.legend()
    if regularisers:
        ax = axes[2]
        ax.plot(epochs, history.norm, label="normalisation")
        ax.plot(epochs, history.ent, label="entropy")
        ax.set_yscale("symlog", linthresh=1e-3)
        ax.set(xlabel="epoch", ylabel="value (summed over stacks)", title="regularisers")
        ax.legend()
    if title:
        fig.suptitle(title)
    return fig


def plot_coefficients(coefficients, element_names: Sequence[str] | None = None,
                      row_names: Sequence[str] | None = None, threshold: float | None = 0.9,
                      suptitle: str | None = None, highlight: Sequence[int] | None = None,
                      columns: int | None = None):
    """Bars of convex coefficients: one panel per learned matrix, one bar per group element.

    Args:
        coefficients: (n, |G|), e.g. :func:`wslib.analysis.convex_coefficients`.
        element_names: x tick labels (the group's elements).
        row_names: one panel title per learned matrix.
        threshold: draw a dashed line at this weight (``None``: no line).
        highlight: group elements to colour differently (e.g. the ones the data sampled).
        columns: panels per row (default: as many as fit the page's width).

    Returns:
        the matplotlib figure.
    """
    w = _numpy(coefficients)
    if w.ndim == 1:
        w = w[None]
    n, g = w.shape
    names = list(element_names) if element_names is not None else [str(i) for i in range(g)]
    rows = list(row_names) if row_names is not None else [f"$R_{{{i + 1}}}$" for i in range(n)]
    panel_width = max(2.2, 0.28 * g + 0.6)  # room for g tick labels of 10 pt
    fit = max(1, int(PAGE_WIDTH_IN // panel_width))
    cols = min(n, columns if columns is not None else fit)
    nrows = -(-n // cols)
    size = _page_size(panel_width * cols + 0.4, 2.3 * nrows + 0.5)
    fig, axes = plt.subplots(nrows, cols, figsize=size, squeeze=False, sharey=True,
                             layout="constrained")
    marked = set(highlight) if highlight is not None else set()
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.axis("off")
            continue
        colors = ["tab:orange" if j in marked else "tab:blue" for j in range(g)]
        ax.bar(range(g), w[i], color=colors)
        if threshold is not None:
            ax.axhline(threshold, color="0.3", ls="--", lw=1)
        ax.set_xticks(range(g), names)
        ax.set(ylim=(0, 1.05), title=rows[i])
        if i % cols == 0:
            ax.set_ylabel("coefficient")
        if i >= n - cols:
            ax.set_xlabel("group element")
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def plot_hardening(snapshots, epochs: Sequence[int], titles: Sequence[str] | None = None,
                   suptitle: str | None = None, panel_size: float = 1.5):
    """A strip of a learned stack over training: rows are epochs, columns the stack's matrices.

    Args:
        snapshots: a sequence of (n, d, d) stacks (e.g. ``[history.snapshots[e][name] for e in
            epochs]``), one per row.
        epochs: the epoch of each row (labels the rows).
        titles: one title per column (default ``R_1..R_n``, as in :func:`plot_stack`).

    Returns:
        the matplotlib figure (every panel on the [0, 1] matrix colour scale).
    """
    stacks = [_numpy(s) for s in snapshots]
    if len(stacks) != len(epochs) or not stacks:
        raise ValueError(f"need one epoch per snapshot; got {len(stacks)} snapshots, {len(epochs)} epochs")
    n = stacks[0].shape[0]
    cols = list(titles) if titles is not None else [f"$R_{{{i + 1}}}$" for i in range(n)]
    size = _page_size(panel_size * n + 1.4, panel_size * len(stacks) + 0.6)
    fig, axes = plt.subplots(len(stacks), n, figsize=size, squeeze=False, layout="constrained")
    for r, (stack, epoch) in enumerate(zip(stacks, epochs)):
        for c in range(n):
            im = plot_matrix(axes[r, c], stack[c], cols[c] if r == 0 else None)
        axes[r, 0].set_ylabel(f"epoch {epoch}")
    fig.colorbar(im, ax=axes, shrink=0.6, label="entry")
    if suptitle:
        fig.suptitle(suptitle)
    return fig
