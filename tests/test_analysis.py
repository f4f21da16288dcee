import pytest
import torch

from wslib import CNN, GCNN, cyclic, rotation_stack
from wslib.analysis import (
    closure,
    convex_coefficients,
    group_equivariance_error,
    mean_row_max,
    nearest_group_element,
    nearest_permutation,
    recovery,
    rotation_equivariance_error,
)
from wslib.sinkhorn import sinkhorn

C8 = cyclic(8).regular_representation().double()


def test_known_convex_mixture_is_recovered():
    a = torch.tensor([0.5, 0.3, 0.0, 0.0, 0.2, 0.0, 0.0, 0.0], dtype=torch.float64)
    mixed = torch.einsum("g,gij->ij", a, C8)
    w = convex_coefficients(mixed, C8)
    assert w.shape == (8,) and torch.allclose(w, a, atol=1e-5)
    # On the C4 grid permutations of a 5×5 kernel (the lifting layer's basis) too.
    grid = rotation_stack(5).double()
    b = torch.tensor([0.1, 0.0, 0.6, 0.3], dtype=torch.float64)
    assert torch.allclose(convex_coefficients(torch.einsum("g,gij->ij", b, grid), grid), b, atol=1e-5)


def test_coefficients_of_exact_elements_and_of_a_stack():
    w = convex_coefficients(C8[[3, 5]], C8)
    assert w.shape == (2, 8)
    assert torch.allclose(w, torch.eye(8, dtype=torch.float64)[[3, 5]], atol=1e-6)
    assert torch.allclose(w.sum(1), torch.ones(2, dtype=torch.float64))
    # A matrix outside the group's span still gets valid convex weights.
    soft = sinkhorn(torch.randn(8, 8) * 3)
    ws = convex_coefficients(soft, C8)
    assert (ws >= 0).all() and float(ws.sum()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="group matrices are 8×8"):
        convex_coefficients(torch.eye(4), C8)
    with pytest.raises(ValueError, match="NaN"):
        convex_coefficients(torch.full((8, 8), float("nan")), C8)


def test_sharpness_and_nearest_permutation():
    uniform = torch.full((4, 4), 0.25)
    assert float(mean_row_max(uniform)) == pytest.approx(0.25)
    assert torch.allclose(mean_row_max(C8[:3]), torch.ones(3, dtype=torch.float64))
    noisy = 0.7 * C8[2] + 0.3 / 8
    p, cols = nearest_permutation(noisy)
    assert torch.equal(p, C8[2].float()) and cols.tolist() == C8[2].argmax(1).tolist()
    g, dist = nearest_group_element(noisy, C8)
    assert g == 2 and dist > 0
    with pytest.raises(ValueError, match="shape"):
        nearest_permutation(torch.ones(2, 3))


def test_recovery_reports_elements_weights_and_coverage():
    stack = torch.stack([0.95 * C8[1] + 0.05 * C8[2], C8[4], 0.6 * C8[7] + 0.4 * C8[0]])
    r = recovery(stack, C8, cyclic(8).element_names)
    assert r.element == [1, 4, 7] and r.covered == [1, 4, 7]
    assert r.min_weight == pytest.approx(0.6, abs=1e-5)
    assert r.covers([1, 4]) and not r.covers([1, 2])
    assert "r⁴" in r.table()


def test_closure_of_a_group_and_of_half_of_it():
    assert closure(C8).is_closed(1e-9)
    half = closure(C8[:4])  # shifts 0..3: 3 + 2 = 5 is missing
    assert not half.is_closed(0.5)
    assert half.error[0, 3] == pytest.approx(0.0) and half.error[3, 2] > 1.0


def test_equivariance_errors_of_models():
    torch.manual_seed(0)
    x = torch.randn(2, 1, 28, 28)
    gcnn = GCNN(hidden=4, num_blocks=2).eval()
    cnn = CNN(hidden=4, num_blocks=2).eval()
    exact = group_equivariance_error(gcnn, x, cyclic(4))
    assert exact.max_error < 1e-5
    assert group_equivariance_error(cnn, x, cyclic(4)).max_error > 1e-3
    rot = rotation_equivariance_error(gcnn, x, [0.0, 90.0, 45.0])
    assert rot.errors[0] < 1e-6 and rot.errors[1] < 1e-4 and rot.errors[2] > rot.errors[1]
    with pytest.raises(ValueError, match="output must be"):
        group_equivariance_error(gcnn, x, cyclic(4), output="both")


def test_plots_of_learned_stacks_and_runs():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from wslib import viz
    from wslib.train import History

    fig = viz.plot_stack_vs_group(C8[1:3], C8[1:3], suptitle="s")
    assert fig._suptitle.get_text() == "s" and all(im.get_clim() == (0.0, 1.0) for ax in fig.axes for im in ax.images)
    with pytest.raises(ValueError, match="stacks"):
        viz.plot_stack_vs_group(C8[1:3], C8[1:2])
    fig = viz.plot_hardening([C8[:3], C8[3:6]], [0, 5])
    assert fig.axes[0].get_ylabel() == "epoch 0" and fig.axes[3].get_ylabel() == "epoch 5"
    with pytest.raises(ValueError, match="one epoch per snapshot"):
        viz.plot_hardening([C8[:3]], [0, 1])
    fig = viz.plot_coefficients(torch.eye(8)[:5], cyclic(8).element_names, columns=3)
    assert len(fig.axes) == 6 and not fig.axes[5].axison  # 5 panels in a 2×3 grid, one blank
    fig = viz.plot_kernel_stack(torch.randn(3, 4, 9), max_channels=2)
    assert len([ax for ax in fig.axes if ax.images]) == 4 * 2
    with pytest.raises(ValueError, match="not square"):
        viz.plot_kernel_stack(torch.randn(3, 4, 8))
    h = History(epoch=[1, 2], train_loss=[1.0, 0.5], test_loss=[1.1, 0.6], train_acc=[0.5, 0.9],
                test_acc=[0.4, 0.8], norm=[0.1, 0.01], ent=[5.0, 1.0])
    fig = viz.plot_history(h, title="run", regularisers=True)
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy", "regularisers"]
    plt.close("all")


# --- Rows agreeing with a group permutation ---------------------------------------------------

from wslib.analysis import row_agreement  # noqa: E402


def test_rotation_stack_rows_follow_numpys_rot90():
    # The published animation of the paper's run is read with np.rot90 on the row-major 5×5
    # index grid; the row maxima of rotation_stack(5)[r] are exactly those indices.
    import numpy as np

    idx = np.arange(25).reshape(5, 5)
    for r, m in enumerate(rotation_stack(5)):
        assert m.argmax(1).tolist() == np.rot90(idx, r).reshape(-1).tolist()


def test_row_agreement_of_exact_soft_and_partial_rotations():
    rots = rotation_stack(5)
    uniform = torch.full((25, 25), 1 / 25)
    soft = 0.3 * rots[2] + 0.7 * uniform  # weight 0.3 only, but every row's maximum follows r180
    partial = rots[3].clone()
    partial[:4] = rots[1][:4]  # four rows follow r90, the other 21 r270
    res = row_agreement(torch.stack([rots[1], soft, partial]), rots[1:], ["r90", "r180", "r270"])
    assert res.element == [0, 1, 2] and res.names == ["r90", "r180", "r270"]
    assert res.rows_agreeing == [25, 25, 21] and res.rows == 25
    # against the whole group the identity shares the centre pixel with every rotation only
    assert row_agreement(rots[0], rots).rows_agreeing == [25]


def test_row_agreement_rejects_what_it_cannot_read():
    rots = rotation_stack(5)
    with pytest.raises(ValueError, match="permutation"):
        row_agreement(rots[1], torch.full((2, 25, 25), 1 / 25))
    with pytest.raises(ValueError, match="differ in size"):
        row_agreement(torch.eye(9), rots)
    with pytest.raises(ValueError, match="names"):
        row_agreement(rots[1], rots, ["e", "r90"])
    with pytest.raises(ValueError, match="NaN"):
        row_agreement(torch.full((25, 25), float("nan")), rots)
