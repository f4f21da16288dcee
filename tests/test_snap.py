import pytest
import torch

from wslib import cyclic, dihedral, rotation_stack
from wslib.analysis import grid_names, identify_group, nearest_permutation, snap, snap_gap
from wslib.sinkhorn import sinkhorn

P8 = cyclic(8).regular_representation().double()  # C8 acting on itself: the 8 cyclic shifts
C4_GRID = rotation_stack(5).double()  # (4, 25, 25) quarter turns of a 5×5 kernel
D4_GRID = rotation_stack(5, 4, flips=True).double()  # (8, 25, 25), element a + 4b = r^a s^b


def noisy(perms: torch.Tensor, weight: float = 0.7, seed: int = 0) -> torch.Tensor:
    """Each permutation mixed with a random doubly stochastic matrix: convex weight ``weight`` on
    the permutation, the level of the book's trained stacks (top convex coefficients 0.71-0.87
    in chapter 5's checkpoints)."""
    g = torch.Generator().manual_seed(seed)
    soft = sinkhorn(torch.randn(perms.shape, generator=g, dtype=torch.float64) * 2, n_iter=200)
    return weight * perms + (1 - weight) * soft


def test_snapping_permutations_is_the_identity_map():
    for dtype in (torch.float32, torch.float64):
        stack = D4_GRID.to(dtype)
        out = snap(stack)
        assert out.dtype == dtype and out.shape == stack.shape and torch.equal(out, stack)
        assert torch.equal(snap(stack[3]), stack[3])  # (d, d) in, (d, d) out
        assert torch.equal(snap_gap(stack), torch.zeros(8, dtype=torch.float64))
    assert snap_gap(P8[2]).dim() == 0


def test_snap_accepts_stacks_hardened_at_a_low_temperature():
    # 20 Sinkhorn iterations at a low temperature leave row sums visibly off 1 (here by ~0.15,
    # the chapter 4 toys by ~0.3); such a stack still snaps, to its own nearest permutations.
    logits = torch.rand(7, 8, 8, generator=torch.Generator().manual_seed(0))
    hard = sinkhorn(logits, n_iter=20, temperature=0.02)
    assert (hard.sum(-1) - 1).abs().max() > 0.1
    perms = snap(hard)
    for m, p in zip(hard, perms):
        assert torch.equal(p, nearest_permutation(m)[0])


def test_snap_gap_of_soft_matrices():
    d = 8
    uniform = torch.full((d, d), 1.0 / d)
    assert float(snap_gap(uniform)) == pytest.approx(((d - 1) / d) ** 0.5)
    mixed = 0.5 * P8[1] + 0.5 * P8[3]  # halfway between two shifts
    assert float(snap_gap(mixed)) == pytest.approx(0.5 * 2**0.5)  # ‖(P3 − P1)/2‖_F / √d
    assert float(snap_gap(noisy(P8[1:2], 0.9))[0]) < float(snap_gap(noisy(P8[1:2], 0.6))[0])


@pytest.mark.parametrize("weight", [0.7, 0.8, 0.95])
def test_noisy_c4_on_a_grid_is_identified_with_slot_names(weight):
    stack = torch.cat([torch.eye(25, dtype=torch.float64)[None], noisy(C4_GRID[1:], weight)])
    perms = snap(stack)
    assert torch.equal(perms, C4_GRID)
    assert (snap_gap(stack)[1:] > 0.05).all()  # really soft, yet snapped to the right element
    report = identify_group(perms[1:], names=["R1", "R2", "R3"])
    assert report.name == "C4" and report.order == 4 and report.closed and report.added == []
    assert report.slot_names == ["r", "r²", "r³"]
    assert torch.equal(report.group.table, cyclic(4).table)
    grid = grid_names(report, 5)
    assert grid.exact and grid.slots == ["r90", "r180", "r270"]
    assert "R2 = r180" in str(grid) and "C4" in str(report)


def test_noisy_d4_on_a_grid_is_identified():
    perms = snap(noisy(D4_GRID, 0.7, seed=1))
    assert torch.equal(perms, D4_GRID)
    report = identify_group(perms)
    assert report.name == "D4" and report.order == 8 and report.closed
    assert report.slot_names == dihedral(4).element_names
    assert torch.equal(report.group.table, dihedral(4).table)
    assert grid_names(report, 5).slots == ["e", "r90", "r180", "r270",
                                           "s", "r90·s", "r180·s", "r270·s"]
    # The element matrices multiply as the Cayley table says.
    m = report.matrices
    for g in range(8):
        for h in range(8):
            assert torch.equal(m[g] @ m[h], m[report.group.product(g, h)])


def test_noisy_c8_on_shifts_in_any_order():
    order = [3, 1, 7, 5, 2, 6, 4]  # a stack need not hold the shifts in order
    perms = snap(noisy(P8[order], 0.7, seed=2))
    assert torch.equal(perms, P8[order].float().double())
    report = identify_group(perms, names=[f"R{i}" for i in range(1, 8)])
    assert report.name == "C8" and report.closed
    # r is the first given matrix that generates C8 (the shift by 3), so shift j is r^(3⁻¹ j).
    assert report.generators == {"r": 1} and report.slots[0] == 1
    assert report.slots == [(3 * j) % 8 for j in order]  # 3⁻¹ = 3 mod 8
    ordered = identify_group(snap(noisy(P8[1:], 0.7, seed=3)))
    assert ordered.slot_names == cyclic(8).element_names[1:]


def test_half_of_c8_is_not_closed_and_generates_c8():
    report = identify_group(P8[[1, 2, 3]], names=["R1", "R2", "R3"])
    assert not report.closed and report.order == 8 and report.name == "C8"
    assert report.added == [4, 5, 6, 7]
    assert (1, 2, 5) in report.outside  # shift 2 · shift 3 = shift 5
    assert (0, 1, 3) not in report.outside  # shift 1 · shift 2 = shift 3 is in the set
    text = str(report)
    assert "NOT closed" in text and "r⁵" in text
    # The even shifts are a subgroup: closed, a C4 inside C8.
    even = identify_group(P8[[2, 4, 6]])
    assert even.closed and even.name == "C4"


def test_klein_four_group_and_c4_are_told_apart():
    klein = identify_group(D4_GRID[[2, 4, 6]])  # r180, s, r180·s: three elements of order 2
    c4 = identify_group(C4_GRID[1:])
    assert klein.order == c4.order == 4
    assert klein.name == "D2" and c4.name == "C4"
    assert "Klein" in str(klein)
    # The same on abstract regular representations.
    assert identify_group(dihedral(2).regular_representation()).name == "D2"
    assert identify_group(cyclic(4).regular_representation()).name == "C4"
    assert identify_group(torch.eye(3)).name == "trivial"
    assert identify_group(C4_GRID[2]).name == "C2"


def test_a_group_that_is_neither_cyclic_nor_dihedral():
    # C2 × C4 (order 8, abelian, no element of order 8): the product of two cyclic groups
    # acting on 2 + 4 points.
    swap = torch.zeros(6, 6, dtype=torch.float64)
    swap[:2, :2] = P8.new_tensor([[0, 1], [1, 0]])
    swap[2:, 2:] = torch.eye(4)
    turn = torch.zeros(6, 6, dtype=torch.float64)
    turn[:2, :2] = torch.eye(2)
    turn[2:, 2:] = cyclic(4).regular_representation()[1]
    report = identify_group(torch.stack([swap, turn]))
    assert report.order == 8 and report.name == "other (order 8)"


def test_bad_input_raises_clear_errors():
    with pytest.raises(ValueError, match="square"):
        snap(torch.rand(3, 4, 5))
    with pytest.raises(ValueError, match="NaN"):
        snap(torch.full((2, 4, 4), float("nan")))
    with pytest.raises(ValueError, match="doubly stochastic"):
        snap(torch.rand(4, 4) * 3)
    with pytest.raises(ValueError, match="doubly stochastic"):
        snap_gap(-P8[1])
    with pytest.raises(ValueError, match="permutation matrices"):
        identify_group(noisy(C4_GRID[1:]))
    with pytest.raises(ValueError, match="names"):
        identify_group(C4_GRID, names=["a", "b"])
    # Two permutations of 12 points that generate a huge group (a 12-cycle and a transposition
    # generate all 12! permutations).
    cycle = torch.roll(torch.eye(12), 1, dims=0)
    transposition = torch.eye(12)[[1, 0] + list(range(2, 12))]
    with pytest.raises(ValueError, match="max_order=1000"):
        identify_group(torch.stack([cycle, transposition]))
    with pytest.raises(ValueError, match="max_order=5"):
        identify_group(P8[1:], max_order=5)
    with pytest.raises(ValueError, match="5×5 grid"):
        grid_names(identify_group(P8[1:]), 5)
