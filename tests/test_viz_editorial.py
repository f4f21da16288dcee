"""The book's figure helpers: what they draw, and that their text stays legible on the page."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from wslib import cyclic, dihedral, viz  # noqa: E402


def test_smallest_font_on_page_scales_wide_figures_down():
    fig, ax = plt.subplots(figsize=(688 / 96 * 2, 3), dpi=150)  # twice the column's width
    ax.set_title("title", fontsize=20)
    ax.set_xticks([])
    ax.set_yticks([])
    assert viz.smallest_font_on_page(fig) == pytest.approx(10.0)
    narrow, ax = plt.subplots(figsize=(2, 2), dpi=96)  # shown at natural size
    ax.set_title("t", fontsize=12)
    ax.set_xticks([])
    ax.set_yticks([])
    assert viz.smallest_font_on_page(narrow) == pytest.approx(12.0)
    plt.close("all")


def test_cayley_table_labels_every_cell_with_the_product():
    D4 = dihedral(4)
    fig, ax = plt.subplots()
    viz.draw_cayley_table(ax, D4)
    cells = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text()
             for t in ax.texts}
    assert len(cells) == 64
    r, s = 1, 4
    assert cells[(r, s)] == f"${viz.tex(D4.element_names[D4.product(r, s)])}$"
    assert cells[(r, s)] != cells[(s, r)]  # D4 is not abelian
    plt.close(fig)


def test_draw_element_shows_the_rotated_kernel():
    w = torch.arange(9.0).view(3, 3) - 4
    fig, axes = plt.subplots(1, 3)
    viz.draw_element(axes, cyclic(4), 1, w)
    shown = torch.as_tensor(axes[2].images[0].get_array())
    assert torch.equal(shown, torch.rot90(w, 1))
    assert axes[1].get_title().startswith("$R_{r}$")
    plt.close(fig)


def test_draw_sinkhorn_row_sums_and_error_title():
    logits = torch.randn(5, 5, generator=torch.Generator().manual_seed(0))
    fig, (a, b) = plt.subplots(1, 2)
    viz.draw_sinkhorn(a, b, logits, tau=0.1, n_iter=1)
    assert len(b.patches) == 5 and "K = 1" in a.get_title()
    plt.close(fig)


def test_wide_helpers_fit_the_page_with_legible_text():
    coefficients = torch.eye(8)[1:]  # seven panels, as for a learned C8 stack
    fig = viz.plot_coefficients(coefficients, cyclic(8).element_names)
    assert fig.get_figwidth() <= viz.PAGE_WIDTH_IN + 1e-9
    fig.canvas.draw()
    assert viz.smallest_font_on_page(fig) >= 9
    stack = viz.plot_stack(torch.eye(4).expand(6, 4, 4))
    assert stack.get_figwidth() <= viz.PAGE_WIDTH_IN + 1e-9
    plt.close("all")


def test_coefficient_grid_stretches_colours_to_the_data_and_adds_a_colour_bar():
    coefficients = torch.tensor([[[0.19, 0.25, 0.19, 0.37]], [[0.25, 0.25, 0.25, 0.25]]])
    fig = viz.plot_coefficient_grid(coefficients, ["a", "b"])
    image = fig.axes[0].images[0]
    assert image.get_clim() == pytest.approx((0.19, 0.37))  # the data's range, not [0, 1]
    assert any(ax.get_ylabel() == "coefficient" for ax in fig.axes[1:])  # the colour bar
    colors = {t.get_text(): t.get_color() for t in fig.axes[0].texts}
    assert colors[".19"] != colors[".37"]  # dark and light cells get contrasting text
    fixed = viz.plot_coefficient_grid(coefficients, ["a", "b"], vmin=0.0, vmax=1.0)
    assert fixed.axes[0].images[0].get_clim() == (0.0, 1.0)
    plt.close("all")


def test_coefficients_mark_highlighted_elements_whatever_the_bar_height():
    coefficients = torch.zeros(3, 8)
    coefficients[0, 1] = coefficients[1, 2] = coefficients[2, 3] = 1.0
    fig = viz.plot_coefficients(coefficients, cyclic(8).element_names, highlight=[0, 1, 2, 3],
                                columns=3)
    axes = [ax for ax in fig.axes if ax.axison]
    assert len(axes) == 3 and len({ax.get_position().y0 for ax in axes}) == 1  # one row
    for ax in axes:
        assert len(ax.patches) == 8 + 4  # eight bars, four bands behind the sampled elements
        labels = [t.get_color() for t in ax.get_xticklabels()]
        assert labels[0] == labels[3] != labels[4]  # e (bar height 0) is marked, r⁴ is not
    plt.close("all")


def test_rows_agreeing_is_solid_only_while_the_rotations_are_distinct():
    import numpy as np

    curves = {
        "reference": {"epoch": [0, 1, 2], "rows_agreeing": [[2, 2, 1], [10, 14, 13], [25, 25, 25]],
                      "rows_rotation": [["r90", "r90", "r180"], ["r180"] * 3, ["r270", "r180", "r90"]]},
        "run": {"epoch": [0.25, 0.5], "rows_agreeing": [[3, 4, 5], [6, 6, 6]],
                "rows_rotation": [["r90", "r180", "r270"], ["r90", "r90", "r270"]],
                "weight": [[0.3, 0.25, 0.4], [0.5, 0.6, 0.7]]},
    }
    fig = viz.plot_rows_agreeing(curves, reference="reference", xmax=3)
    top, bottom = fig.axes
    solid = [line for line in top.lines if line.get_linestyle() == "-"]
    ref_solid, run_solid = (np.asarray(line.get_ydata(), dtype=float) for line in solid)
    assert np.isnan(ref_solid[:2]).all() and ref_solid[2] == 25  # distinct only at epoch 2
    assert run_solid[0] == 4 and np.isnan(run_solid[1])
    assert solid[0].get_color() == "black"
    # the smallest convex weight, for the run that has one
    assert [list(line.get_ydata()) for line in bottom.lines] == [[0.25, 0.5]]
    assert bottom.get_xlim() == (0, 3)
    plt.close(fig)
    with pytest.raises(ValueError, match="at least one"):
        viz.plot_rows_agreeing({})
