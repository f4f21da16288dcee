"""Plotting for the book: matrices, stacks and kernels, with one colour map throughout.

Every matrix in the book -- permutations, doubly stochastic matrices, learned stacks -- is drawn
with ``MATRIX_CMAP`` on the range [0, 1] unless a function says otherwise, so that a reader
can compare any two figures. Kernels (signed weights) use ``KERNEL_CMAP``, centred on zero.

Importing this module applies the book's figure style (:func:`use_book_style`): figures are
drawn at ``DPI`` and text is large enough to stay legible (at least 9 pt) once a figure of
at most ``PAGE_WIDTH_IN`` inches is shrunk to the page's 688 px column; see
:func:`smallest_font_on_page`.
"""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Patch
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
               vmin: float = 0.0, vmax: float = 1.0, panel_size: float = 2.2, axes=None,
               colorbar_shrink: float = 0.8):
    """Draw a stack of matrices side by side, one panel each, with a shared colour bar.

    Args:
        stack: (n, d, d) tensor or array.
        titles: one title per panel (default ``R_1 .. R_n``).
        suptitle: a title for the whole row.
        axes: optional sequence of n axes to draw into (else a new figure is made).
        colorbar_shrink: the colour bar's height as a fraction of the panels' slots (lower it
            when the slots are taller than the square panels, so that the bar is no taller
            than the matrices it describes).

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
    fig.colorbar(im, ax=list(axes), shrink=colorbar_shrink)
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
                        panel_size: float = 2.0,
                        row_labels: Sequence[str] = ("learned", "exact group")):
    """A learned stack (top row) above the exact group matrices it should match (bottom row).

    Args:
        learned: (n, d, d) learned matrices.
        exact: (n, d, d) the group's matrices, in the order to compare with (e.g. each learned
            matrix's nearest element, from :func:`wslib.analysis.recovery`).
        learned_titles, exact_titles: panel titles (defaults ``learned R_1..R_n`` /
            ``exact P_1..P_n``, numbered from 1 as in :func:`plot_stack`).
        row_labels: the labels of the top and bottom rows (e.g. ``("soft", "snapped")`` for
            matrices that were not learned).

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
    axes[0, 0].set_ylabel(row_labels[0])
    axes[1, 0].set_ylabel(row_labels[1])
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
                      columns: int | None = None, highlight_label: str = "sampled"):
    """Bars of convex coefficients: one panel per learned matrix, one bar per group element.

    Args:
        coefficients: (n, |G|), e.g. :func:`wslib.analysis.convex_coefficients`.
        element_names: x tick labels (the group's elements).
        row_names: one panel title per learned matrix.
        threshold: draw a dashed line at this weight (``None``: no line).
        highlight: group elements to mark (e.g. the ones the data sampled): each gets a light
            orange band behind its bar and an orange tick label, visible whatever the bar's
            height, and the figure a legend entry ``highlight_label``.
        columns: panels per row (default: as many as fit the page's width).
        highlight_label: the legend's name for the marked elements.

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
    marked = sorted({int(j) for j in highlight}) if highlight is not None else []
    band = {"color": "tab:orange", "alpha": 0.2, "lw": 0}
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.axis("off")
            continue
        for j in marked:  # marked independently of the bar: a zero bar still shows its band
            ax.axvspan(j - 0.5, j + 0.5, zorder=0, **band)
        ax.bar(range(g), w[i], color="tab:blue", zorder=2)
        if threshold is not None:
            ax.axhline(threshold, color="0.3", ls="--", lw=1, zorder=3)
        ax.set_xticks(range(g), names)
        for j in marked:
            ax.get_xticklabels()[j].set(color="tab:orange", fontweight="bold")
        ax.set(ylim=(0, 1.05), title=rows[i])
        if i % cols == 0:
            ax.set_ylabel("coefficient")
        if i >= n - cols:
            ax.set_xlabel("group element")
    if marked:
        handles = [Patch(label=highlight_label, **band),
                   Patch(color="tab:blue", label="coefficient")]
        fig.legend(handles=handles, loc="outside lower center", ncol=2)
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


# --- chapter 8: from learned to exact -----------------------------------------------------------

__all__ += ["plot_products", "plot_snap_sweep"]


def plot_products(report, title: str | None = None, ax=None):
    """The products of a set of permutations, and which of them leave the set.

    Cell (i, j) names the element M_i M_j of the generated group, for the identity and the
    given matrices of a :class:`wslib.analysis.GroupReport`; it is shaded when the product is
    neither the identity nor a given matrix -- what closing the set under composition adds.

    Args:
        report: from :func:`wslib.analysis.identify_group`.
        title: panel title.
        ax: an axis to draw into (else a new figure is made).

    Returns:
        the matplotlib figure.
    """
    from matplotlib.colors import ListedColormap

    slots = [0] + list(report.slots)
    labels = ["e"] + list(report.labels)
    n = len(slots)
    members = set(slots)
    table = report.group.table
    prod = np.array([[int(table[a, b]) for b in slots] for a in slots])
    outside = np.isin(prod, list(members), invert=True)
    if ax is None:
        side = min(PAGE_WIDTH_IN, 0.55 * n + 1.6)
        fig, ax = plt.subplots(figsize=(side, side * 0.9), layout="constrained")
    fig = ax.figure
    ax.imshow(outside, cmap=ListedColormap(["#e8eef7", "tab:orange"]), vmin=0, vmax=1)
    names = report.group.element_names
    for i in range(n):
        for j in range(n):
            ax.text(j, i, names[prod[i, j]], ha="center", va="center", fontsize=10)
    ax.set_xticks(range(n), labels)
    ax.set_yticks(range(n), labels)
    ax.set(xlabel="right factor $M_j$", ylabel="left factor $M_i$")
    ax.set_title(title or f"products $M_i M_j$ in {report.name} (orange: outside the set)")
    return fig


def plot_snap_sweep(noise, recovered, identified, gaps, title: str | None = None):
    """How snapping and identification degrade as a stack gets noisier.

    Args:
        noise: (L,) noise weights (0: exact permutations, 1: pure noise).
        recovered: (L,) fraction of trials in which snapping returned the exact group elements.
        identified: (L,) fraction of trials in which the snapped set was named as the group.
        gaps: (L, T) snap gaps (e.g. the mean over the stack) of T trials per noise level.
        title: a title for the figure.

    Returns:
        the matplotlib figure.
    """
    x = _numpy(noise)
    g = _numpy(gaps)
    if g.ndim != 2 or g.shape[0] != len(x):
        raise ValueError(f"gaps must have shape (levels, trials) = ({len(x)}, T); got {g.shape}")
    fig, axes = plt.subplots(1, 2, figsize=_page_size(7.6, 3.0), layout="constrained")
    # The two curves often coincide: the solid one is drawn wider, with large open markers, so
    # that it shows around the dashed one on top of it.
    axes[0].plot(x, _numpy(recovered), marker="o", ms=7, mfc="none", mew=1.5, lw=3.5,
                 alpha=0.6, label="snap = exact elements")
    axes[0].plot(x, _numpy(identified), marker="s", ms=3, ls="--", lw=1.5, color="tab:orange",
                 label="named correctly")
    axes[0].set(xlabel="noise weight", ylabel="fraction of trials", ylim=(-0.05, 1.05),
                title="snapping and naming")
    axes[0].legend(loc="lower left")
    axes[1].fill_between(x, g.min(axis=1), g.max(axis=1), alpha=0.3, label="range over trials")
    axes[1].plot(x, g.mean(axis=1), color="tab:blue", label="mean")
    axes[1].set(xlabel="noise weight", ylabel=r"snap gap $\|R-P\|_F/\sqrt{d}$",
                title="distance to the snapped permutation")
    axes[1].legend(loc="upper left")
    if title:
        fig.suptitle(title)
    return fig


# --- recorded runs: chapter 5's emergence traces and the investigation's decisive runs ----------

# The C4 elements as the recordings name them (``r90``...) and as the book writes them.
_C4_TEX = {"e": "$e$", "r90": "$r$", "r180": "$r^2$", "r270": "$r^3$",
           "r": "$r$", "r²": "$r^2$", "r³": "$r^3$"}
_C4_ORDER = ["e", "r90", "r180", "r270"]
_C4_ALIAS = {"r": "r90", "r²": "r180", "r³": "r270"}
_C4_COLORS = ["0.75", "tab:blue", "tab:orange", "tab:green"]


def plot_emergence(runs: Sequence[dict], goal: float = 0.7, suptitle: str | None = None):
    """The lifting stack's C4 fit over training, one panel per recorded run.

    Top of each panel: the convex weight of each learned matrix ``R_1, R_2, R_3`` on its nearest
    C4 rotation, per measurement (dashed: ``goal``). Below it, a strip with one row per matrix
    whose colour names that nearest element (``e``, ``r``, ``r²``, ``r³``), so a reader sees both
    how strongly and onto what each matrix has settled. ``R_j`` should end on ``r^j``.

    Args:
        runs: dicts with ``"title"`` (str), ``"step"`` (T,), ``"weight"`` (T, 3) and
            ``"element"`` (T, 3) names such as ``"r90"`` or ``"r²"`` -- e.g. the ``trace`` of a
            ``results/ch5/emergence/*.json`` record.
        goal: the convex weight that counts as "is that rotation".

    Returns:
        the matplotlib figure.
    """
    if not runs:
        raise ValueError("plot_emergence needs at least one run")
    n = len(runs)
    cols = min(n, 3)
    nrows = -(-n // cols)
    size = _page_size(2.55 * cols + 0.3, 3.3 * nrows + 0.7)
    fig = plt.figure(figsize=size, layout="constrained")
    grid = fig.add_gridspec(2 * nrows, cols, height_ratios=[4, 1] * nrows)
    slot_colors = ["tab:blue", "tab:orange", "tab:green"]
    last = max(float(np.max(run["step"])) for run in runs)  # one step axis for every panel
    for i, run in enumerate(runs):
        r, c = divmod(i, cols)
        ax = fig.add_subplot(grid[2 * r, c])
        strip = fig.add_subplot(grid[2 * r + 1, c], sharex=ax)
        step = np.asarray(run["step"], dtype=float)
        weight = np.asarray(run["weight"], dtype=float).reshape(len(step), -1)
        for j in range(weight.shape[1]):
            ax.plot(step, weight[:, j], color=slot_colors[j % 3], marker=".", ms=4,
                    label=f"$R_{j + 1}$")
        ax.axhline(goal, color="0.3", ls="--", lw=1)
        ax.set(ylim=(0, 1.02), title=run["title"])
        ax.tick_params(labelbottom=False)
        if c == 0:
            ax.set_ylabel("convex weight")
        names = [[_C4_ALIAS.get(e, e) for e in row] for row in run["element"]]
        idx = np.array([[_C4_ORDER.index(e) for e in row] for row in names]).T  # (3, T)
        # Each measurement colours the interval around its step (a lone one: half a step each side).
        gap = np.diff(step) if len(step) > 1 else step[:1]
        edges = np.concatenate([step[:1] - gap[:1] / 2, (step[1:] + step[:-1]) / 2,
                                step[-1:] + gap[-1:] / 2])
        strip.pcolormesh(edges, np.arange(idx.shape[0] + 1), idx, vmin=-0.5, vmax=3.5,
                         cmap=plt.matplotlib.colors.ListedColormap(_C4_COLORS))
        strip.set_yticks(np.arange(idx.shape[0]) + 0.5,
                         [f"$R_{j + 1}$" for j in range(idx.shape[0])])
        strip.invert_yaxis()
        strip.set(xlabel="optimiser step", xlim=(0, last * 1.04))
    handles = [plt.Line2D([], [], color=col, marker=".", label=f"$R_{j + 1}$")
               for j, col in enumerate(slot_colors)]
    handles += [Patch(color=col, label=f"nearest {_C4_TEX[e]}")
                for e, col in zip(_C4_ORDER, _C4_COLORS)]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 7),
               columnspacing=0.8, handlelength=1.2)
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def plot_goal_progress(curves: dict, goal: float = 0.7, xlabel: str = "epoch",
                       title: str | None = None):
    """The smallest convex weight of a lifting stack's three learned matrices, per run.

    A compact view of several recorded runs on one axis: solid while the three matrices' nearest
    elements are ``r, r², r³`` in order (``R_j`` on ``r^j``), dotted while they are not. The
    dashed line is ``goal``.

    Args:
        curves: label -> dict with ``"x"`` (T,), ``"weight"`` (T, 3) and ``"element"`` (T, 3)
            names (``"r90"``... or ``"r"``...).
        goal: the weight that counts as "is that rotation".

    Returns:
        the matplotlib figure.
    """
    fig, ax = plt.subplots(figsize=_page_size(7.4, 3.6), layout="constrained")
    target = ["r90", "r180", "r270"]
    for (label, cur), color in zip(curves.items(), plt.cm.tab10.colors):
        x = np.asarray(cur["x"], dtype=float)
        w = np.asarray(cur["weight"], dtype=float).min(axis=1)
        ordered = np.array([[_C4_ALIAS.get(e, e) for e in row] == target for row in cur["element"]])
        # The legend shows the solid line, or the dotted one for a run never in order.
        ax.plot(x, w, color=color, ls=":", lw=1.2, label=None if ordered.any() else label)
        ax.plot(x, np.where(ordered, w, np.nan), color=color, lw=2,
                label=label if ordered.any() else None)
    ax.axhline(goal, color="0.3", ls="--", lw=1)
    ax.set(xlabel=xlabel, ylabel="smallest convex weight", ylim=(0, 1.02))
    if title:
        ax.set_title(title)
    fig.legend(loc="outside lower center", ncol=2 if len(curves) > 2 else len(curves))
    return fig


def plot_rows_agreeing(curves: dict, reference: str | None = None, rows: int = 25,
                       xmax: float | None = None, title: str | None = None):
    """How far several runs' lifting stacks have become C4, on one epoch axis.

    Top: the rows of each learned matrix whose maximum agrees with the matrix's nearest
    rotation (:func:`wslib.analysis.row_agreement`), averaged over ``R_1, R_2, R_3``; solid
    while the three matrices follow three *different* rotations (as C4 needs), dotted while two
    share one. Bottom: the smallest convex weight of the three (:func:`wslib.analysis.recovery`),
    for the runs that have it. ``rows`` everywhere is an exact C4; ``rows / 25``-ish is chance.

    Args:
        curves: label -> dict with ``"epoch"`` (T,), ``"rows_agreeing"`` (T, 3),
            ``"rows_rotation"`` (T, 3) rotation names and, optionally, ``"weight"`` (T, 3).
        reference: the label drawn in black, thicker (e.g. the authors' run).
        rows: rows per matrix (k² for a k×k kernel).
        xmax: the last epoch shown (default: the longest curve).

    Returns:
        the matplotlib figure.
    """
    if not curves:
        raise ValueError("plot_rows_agreeing needs at least one curve")
    fig, (top, bottom) = plt.subplots(2, 1, figsize=_page_size(7.4, 5.6), sharex=True,
                                      height_ratios=[3, 2], layout="constrained")
    colors = iter(plt.cm.tab10.colors)
    for label, cur in curves.items():
        ref = label == reference
        color = "black" if ref else next(colors)
        lw = 2.4 if ref else 1.6
        x = np.asarray(cur["epoch"], dtype=float)
        agree = np.asarray(cur["rows_agreeing"], dtype=float).reshape(len(x), -1)
        distinct = np.array([len(set(r)) == len(r) for r in cur["rows_rotation"]])
        mean = agree.mean(axis=1)
        top.plot(x, mean, color=color, ls=":", lw=lw * 0.7)
        top.plot(x, np.where(distinct, mean, np.nan), color=color, lw=lw, label=label)
        if cur.get("weight") is not None:
            w = np.asarray(cur["weight"], dtype=float).reshape(len(x), -1).min(axis=1)
            bottom.plot(x, w, color=color, lw=lw)
    top.axhline(rows, color="0.3", ls="--", lw=1)
    top.set(ylabel=f"rows agreeing (of {rows})", ylim=(0, rows + 1))
    bottom.set(ylabel="smallest convex weight", xlabel="epoch", ylim=(0, 1.02))
    if xmax is not None:
        bottom.set_xlim(0, xmax)
    if title:
        top.set_title(title)
    fig.legend(loc="outside lower center", ncol=3, handlelength=1.6, columnspacing=1.0)
    return fig


__all__ += ["plot_emergence", "plot_goal_progress", "plot_rows_agreeing"]


def plot_coefficient_grid(coefficients, row_labels: Sequence[str],
                          element_names: Sequence[str] = ("e", "r", "r²", "r³"),
                          title: str | None = None, vmin: float | None = None,
                          vmax: float | None = None):
    """Convex coefficients of several lifting stacks as one annotated grid.

    One row per stack (e.g. per recorded run), one block of columns per learned matrix
    ``R_1, R_2, ...``, one column per group element; each cell prints its coefficient. It
    replaces a row of small bar charts, whose labels shrink past reading as runs are added.

    Args:
        coefficients: (runs, matrices, |G|) convex coefficients, each row summing to 1.
        row_labels: one label per run.
        element_names: the group's elements (columns within each block).
        vmin, vmax: the colour range (default: the data's smallest and largest coefficient,
            so that differences within a narrow range such as 0.2-0.4 stay visible; the
            colour bar says which range it is). Pass 0 and 1 to compare with other figures.

    Returns:
        the matplotlib figure, with a colour bar; each number is printed in black or white,
        whichever stands out against its cell.
    """
    c = _numpy(coefficients).astype(float)
    if c.ndim != 3 or c.shape[0] != len(row_labels) or c.shape[2] != len(element_names):
        raise ValueError(f"coefficients must be (runs={len(row_labels)}, matrices, "
                         f"{len(element_names)}); got {c.shape}")
    runs, mats, g = c.shape
    flat = c.reshape(runs, mats * g)
    lo = float(np.nanmin(flat)) if vmin is None else float(vmin)
    hi = float(np.nanmax(flat)) if vmax is None else float(vmax)
    if hi <= lo:  # constant data: centre it in a range of 0.1
        lo, hi = lo - 0.05, hi + 0.05
    size = _page_size(3.3 + 0.42 * mats * g, 1.1 + 0.36 * runs)
    fig, ax = plt.subplots(figsize=size, layout="constrained")
    im = ax.imshow(flat, cmap=MATRIX_CMAP, vmin=lo, vmax=hi, aspect="auto")
    for i in range(runs):
        for j in range(mats * g):
            r, gr, b, _ = im.cmap(im.norm(flat[i, j]))
            light = 0.299 * r + 0.587 * gr + 0.114 * b > 0.5  # perceived brightness of the cell
            ax.text(j, i, f"{flat[i, j]:.2f}".lstrip("0"), ha="center", va="center", fontsize=10,
                    color="black" if light else "white")
    ax.set_xticks(range(mats * g), [tex_name for _ in range(mats) for tex_name in
                                    (f"${tex(e)}$" for e in element_names)])
    ax.set_yticks(range(runs), row_labels)
    for m in range(1, mats):
        ax.axvline(m * g - 0.5, color="white", lw=3)
    top = ax.secondary_xaxis("top")
    top.set_xticks([m * g + (g - 1) / 2 for m in range(mats)],
                   [f"$R_{{{m + 1}}}$" for m in range(mats)])
    top.tick_params(length=0)
    fig.colorbar(im, ax=ax, label="coefficient", pad=0.02, aspect=max(4, 4 * runs))
    if title:
        ax.set_title(title)
    return fig


__all__ += ["plot_coefficient_grid"]
