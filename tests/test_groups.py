import itertools

import pytest
import torch

from wslib import cyclic, dihedral, interpolated_rotation_matrix, rotation_stack, shift_twist_stack
from wslib.groups import FiniteGroup

GROUPS = [cyclic(1), cyclic(4), cyclic(5), cyclic(8), dihedral(1), dihedral(3), dihedral(4)]


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: g.name)
def test_group_axioms(group):
    n, t = group.order, group.table
    for g in range(n):
        assert sorted(t[g].tolist()) == list(range(n))  # each row is a permutation (Latin square)
        assert group.product(g, 0) == group.product(0, g) == g
        assert group.product(g, group.inverse(g)) == 0 == group.product(group.inverse(g), g)
    for a, b, c in itertools.product(range(n), repeat=3):
        assert t[t[a, b], c] == t[a, t[b, c]]


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: g.name)
def test_regular_representation_is_a_homomorphism(group):
    P = group.regular_representation(torch.float64)
    for g, h in itertools.product(range(group.order), repeat=2):
        assert torch.equal(P[g] @ P[h], P[group.product(g, h)])
    assert torch.equal(P[0], torch.eye(group.order, dtype=torch.float64))


def test_dihedral_is_not_abelian_and_reflections_are_involutions():
    d4 = dihedral(4)
    r, s = 1, 4
    assert d4.product(r, s) != d4.product(s, r)
    assert d4.product(s, s) == 0
    assert d4.product(s, d4.product(r, s)) == d4.inverse(r)  # s r s = r⁻¹
    assert d4.element_names == ["e", "r", "r²", "r³", "s", "rs", "r²s", "r³s"]


@pytest.mark.parametrize("k", [1, 2, 3, 5, 7])
def test_rotation_stack_agrees_with_rot90(k):
    torch.manual_seed(k)
    R = rotation_stack(k)
    assert R.shape == (4, k * k, k * k)
    for _ in range(3):
        w = torch.randn(k, k)
        for r in range(4):
            torch.testing.assert_close((R[r] @ w.flatten()).view(k, k), torch.rot90(w, r, dims=(-2, -1)), rtol=0, atol=0)


@pytest.mark.parametrize("group", [cyclic(2), cyclic(4), dihedral(2), dihedral(4)], ids=lambda g: g.name)
def test_grid_and_shift_twist_representations_are_homomorphisms(group):
    for rep in (group.grid_representation(3), group.shift_twist_representation(3)):
        n, d = rep.shape[0], rep.shape[1]
        assert torch.equal(rep.sum(-1), torch.ones(n, d)) and torch.equal(rep.sum(-2), torch.ones(n, d))
        for g, h in itertools.product(range(n), repeat=2):
            assert torch.equal(rep[g] @ rep[h], rep[group.product(g, h)])


def test_flip_stack_mirrors_then_rotates():
    w = torch.randn(4, 4)
    D = rotation_stack(4, flips=True)
    assert D.shape == (8, 16, 16)
    for a in range(4):
        torch.testing.assert_close((D[a + 4] @ w.flatten()).view(4, 4), torch.rot90(torch.flip(w, (-1,)), a, (-2, -1)))


def test_shift_twist_layout_is_group_major():
    k, order = 3, 4
    S = shift_twist_stack(k, order)
    assert S.shape == (4, 4 * k * k, 4 * k * k)
    w = torch.randn(order, k, k)  # (input group, k, k)
    for r in range(order):
        out = (S[r] @ w.flatten()).view(order, k, k)
        expected = torch.rot90(torch.roll(w, r, dims=0), r, dims=(-2, -1))
        torch.testing.assert_close(out, expected, rtol=0, atol=0)


def test_interpolated_rotation():
    for k in (3, 5):
        for r in range(4):
            torch.testing.assert_close(interpolated_rotation_matrix(k, 90 * r), rotation_stack(k)[r], atol=1e-6, rtol=0)
    m = interpolated_rotation_matrix(5, 45)
    # Not a permutation: each output pixel is a blend of up to four inputs (rows far from
    # one-hot, summing to at most 1: corners fall outside), and input pixels are used unevenly.
    assert m.min() >= 0 and m.sum(1).max() <= 1 + 1e-6 and m.sum(1).min() < 0.99
    assert m.amax(-1).mean() < 0.9
    assert m.sum(0).max() > 1.01 and m.sum(0).min() < 0.99


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="multiples of 90"):
        rotation_stack(5, order=8)
    with pytest.raises(ValueError, match="square grid"):
        cyclic(8).grid_representation(3)
    with pytest.raises(ValueError, match="kernel_size"):
        rotation_stack(0)
    with pytest.raises(ValueError, match="identity"):
        FiniteGroup("bad", torch.tensor([[1, 0], [0, 1]]), ["a", "b"])
    with pytest.raises(ValueError, match="has 4 elements"):
        cyclic(4).permute_axis(torch.zeros(2, 3), 1, dim=1)
