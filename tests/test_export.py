import pytest
import torch

from wslib import GCNN, WSCNN, LearnedRepresentation, cyclic
from wslib import rotation_stack, shift_twist_stack
from wslib.analysis import group_equivariance_error, snap
from wslib.export import forward_time, to_exact
from wslib.models import GroupNet, hybrid_representations
from wslib.sinkhorn import sinkhorn


def set_stacks(model, weight: float = 1.0, seed: int = 0) -> None:
    """Point every learned stack at the exact C4 one: logits = log of the permutation mixed with
    a random doubly stochastic matrix (``weight`` on the permutation; 1: sharp, Sinkhorn gives
    the permutation to ~1e-4)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for i, conv in enumerate(model.convs):
            exact = (rotation_stack(5) if i == 0 else shift_twist_stack(5))[1:]
            soft = sinkhorn(torch.randn(exact.shape, generator=g) * 2, n_iter=100)
            mix = weight * exact + (1 - weight) * soft  # doubly stochastic: Sinkhorn keeps it
            conv.representation.logits.copy_(10 * exact if weight == 1 else torch.log(mix))


def test_exported_wscnn_equals_the_gcnn_with_the_same_kernels(device):
    torch.manual_seed(0)
    ws = WSCNN(hidden=4, num_blocks=3)
    set_stacks(ws)
    ws = ws.to(device).eval()
    exact = to_exact(ws)
    # No learned stack left: the copy has the G-CNN's layout, and the original is unchanged.
    assert not any(isinstance(m, LearnedRepresentation) for m in exact.modules())
    assert all(isinstance(c.representation, LearnedRepresentation) for c in ws.convs)
    assert torch.equal(exact.convs[0].representation.stack.cpu(), rotation_stack(5))
    assert torch.equal(exact.convs[2].representation.stack.cpu(), shift_twist_stack(5))
    gcnn = GCNN(hidden=4, num_blocks=3).to(device).eval()
    assert exact.state_dict().keys() == gcnn.state_dict().keys()
    gcnn.load_state_dict(exact.state_dict())
    x = torch.randn(3, 1, 28, 28, device=device)
    with torch.no_grad():
        assert torch.allclose(exact(x), gcnn(x), atol=1e-5, rtol=1e-5)
        # The learned model itself is only close: its stacks are Sinkhorn outputs.
        assert (ws(x) - gcnn(x)).abs().max() > 0
    # Exactly invariant under rot90, by the library's checker.
    assert group_equivariance_error(exact, x, cyclic(4)).max_error < 1e-5
    assert group_equivariance_error(exact.features, x, cyclic(4), output="group").max_error < 1e-5


def test_noisy_stacks_snap_to_an_exact_gcnn():
    torch.manual_seed(1)
    ws = WSCNN(hidden=4, num_blocks=2, norm="batch")
    set_stacks(ws, weight=0.7)
    ws.eval()
    stack = ws.convs[0].representation().detach()
    assert (stack[1:] - rotation_stack(5)[1:]).abs().max() > 0.1  # really soft
    x = torch.randn(2, 1, 28, 28)
    before = group_equivariance_error(ws, x, cyclic(4)).max_error
    exact = to_exact(ws)
    after = group_equivariance_error(exact, x, cyclic(4)).max_error
    assert after < 1e-5 < before
    assert exact.training is False and ws.convs[0].representation.logits.requires_grad


def test_snapping_to_a_named_group_and_a_hybrid():
    torch.manual_seed(2)
    hybrid = GroupNet(hybrid_representations(), hidden=4, num_blocks=2).eval()
    with torch.no_grad():  # a stack that is no permutation's neighbour in particular
        hybrid.convs[0].representation.logits.copy_(torch.rand(3, 25, 25))
    plain = to_exact(hybrid)
    named = to_exact(hybrid, group=cyclic(4))
    assert torch.equal(plain.convs[0].representation.stack,
                       snap(hybrid.convs[0].representation().detach()))
    picked = named.convs[0].representation.stack
    assert all(any(torch.equal(p, q) for q in rotation_stack(5)) for p in picked)
    assert torch.equal(picked[0], torch.eye(25))  # the anchored identity stays
    # The group layers were fixed already and stay as they were.
    assert torch.equal(named.convs[1].representation.stack, hybrid.convs[1].representation.stack)


def test_bad_models_raise():
    with pytest.raises(ValueError, match="no LearnedRepresentation"):
        to_exact(GCNN(hidden=2, num_blocks=2))
    ws = WSCNN(hidden=2, num_blocks=2)
    with pytest.raises(ValueError, match="does not act on a pixel grid"):
        to_exact(ws, group=cyclic(3))
    with pytest.raises(ValueError, match="shift-twist of C2"):
        to_exact(ws, group=cyclic(2))
    with torch.no_grad():
        ws.convs[0].representation.logits.fill_(float("nan"))
    with pytest.raises(ValueError, match="NaN"):
        to_exact(ws)
    with pytest.raises(ValueError, match="repeats"):
        forward_time(ws, torch.zeros(1, 1, 28, 28), repeats=0)


def test_forward_time_measures_both_paths():
    ws = WSCNN(hidden=2, num_blocks=2)
    x = torch.randn(1, 1, 28, 28)
    t_rebuild, t_cached = forward_time(ws, x, 3), forward_time(ws, x, 3, cached=True)
    assert t_rebuild > 0 and t_cached > 0
    assert not ws.training and ws.convs[0]._cache is not None  # the cache stays filled
    ticks = iter(range(100))
    assert forward_time(ws, x, 3, clock=lambda: float(next(ticks))) == 1.0  # one tick per pass


def test_any_weight_sharing_model_the_cifar_resnet():
    # A ResNet with "same" padding, residual shortcuts and max-pools: the export finds every
    # learned stack wherever it sits, and with C4 stacks the copy is an exact C4 network.
    from wslib.models import cifar_wscnn

    torch.manual_seed(3)
    net = cifar_wscnn(width=4)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, LearnedRepresentation):
                # k = 7 everywhere: 49-dimensional lifting stacks, 4·49 in the group layers.
                exact = rotation_stack(7) if module.dim == 49 else shift_twist_stack(7)
                module.logits.copy_(torch.log(0.8 * exact[1:] + 0.2 / module.dim))
    net.eval()
    exact = to_exact(net)
    n_learned = sum(isinstance(m, LearnedRepresentation) for m in net.modules())
    assert n_learned == 5 and not any(isinstance(m, LearnedRepresentation) for m in exact.modules())
    x = torch.randn(2, 3, 32, 32)
    assert group_equivariance_error(exact, x, cyclic(4)).max_error < 1e-5
    assert group_equivariance_error(net, x, cyclic(4)).max_error > 1e-4
