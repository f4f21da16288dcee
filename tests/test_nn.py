import pytest
import torch

from wslib import (
    FixedRepresentation,
    GroupConv2d,
    LearnedRepresentation,
    LiftingConv2d,
    assert_equivariant,
    cyclic,
    dihedral,
    equivariance_error,
    rotation_stack,
    shift_twist_stack,
)
from wslib.equivariance import default_tolerance, group_feature_action, image_action
from wslib.sinkhorn import doubly_stochastic_error

CASES = [  # (group, flips, order, kernel size, input size, padding)
    (cyclic(4), False, 4, 3, 9, 0),
    (cyclic(4), False, 4, 5, 12, 2),
    (cyclic(4), False, 4, 4, 11, 1),
    (dihedral(4), True, 4, 3, 10, 1),
    (dihedral(4), True, 4, 5, 13, 0),
    (cyclic(2), False, 2, 3, 8, 0),
]


def _exact_layers(order, flips, k, padding, dtype, c=(2, 3, 2)):
    lift = LiftingConv2d(c[0], c[1], k, FixedRepresentation(rotation_stack(k, order, flips)), padding=padding)
    gconv = GroupConv2d(c[1], c[2], k, FixedRepresentation(shift_twist_stack(k, order, flips)), padding=padding)
    return lift.to(dtype), gconv.to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("group, flips, order, k, size, padding", CASES, ids=lambda v: getattr(v, "name", None))
def test_exact_stacks_make_exact_equivariant_layers(dtype, group, flips, order, k, size, padding, device):
    torch.manual_seed(k * size)
    lift, gconv = (m.to(device) for m in _exact_layers(order, flips, k, padding, dtype))
    x = torch.randn(2, 2, size, size, dtype=dtype, device=device)
    elements = range(group.order)
    # Rotating (mirroring) the image rotates the feature maps and permutes the group axis.
    assert_equivariant(lift, x, image_action(group), group_feature_action(group), elements)
    f = lift(x)
    assert_equivariant(gconv, f, group_feature_action(group), group_feature_action(group), elements)
    assert default_tolerance(dtype) == (1e-10 if dtype == torch.float64 else 1e-5)


def test_checker_names_the_worst_case_when_not_equivariant():
    torch.manual_seed(0)
    c4 = cyclic(4)
    rep = LearnedRepresentation(4, 9)
    lift = LiftingConv2d(1, 2, 3, rep)
    x = torch.randn(1, 1, 8, 8)
    result = equivariance_error(lift, x, image_action(c4), group_feature_action(c4), range(4))
    assert result.errors[0] < 1e-6 and result.max_error > 0.01
    with pytest.raises(AssertionError, match="at element"):
        assert_equivariant(lift, x, image_action(c4), group_feature_action(c4), range(4))


def test_learned_representation_shapes_and_double_stochasticity():
    torch.manual_seed(0)
    rep = LearnedRepresentation(4, 25)
    assert rep.logits.shape == (3, 25, 25)
    assert 0 <= rep.logits.min() and rep.logits.max() < 1  # U[0, 1) initialisation
    stack = rep()
    assert stack.shape == (4, 25, 25)
    assert torch.equal(stack[0], torch.eye(25))
    assert doubly_stochastic_error(stack).max() < 1e-5
    free = LearnedRepresentation(4, 25, fix_identity=False)
    assert free.logits.shape == (4, 25, 25) and free().shape == (4, 25, 25)


def test_gradients_reach_the_logits_and_the_base_kernel(device):
    torch.manual_seed(0)
    lift = LiftingConv2d(1, 2, 3, LearnedRepresentation(4, 9)).to(device)
    gconv = GroupConv2d(2, 2, 3, LearnedRepresentation(4, 36)).to(device)
    loss = gconv(lift(torch.randn(2, 1, 9, 9, device=device))).square().mean()
    loss = loss + lift.representation.normalization_loss() + gconv.representation.entropy_loss()
    loss.backward()
    for p in (lift.representation.logits, gconv.representation.logits, lift.weight, gconv.weight, gconv.bias):
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


def test_kernel_layout_matches_the_definition():
    torch.manual_seed(0)
    k, G = 3, 4
    gconv = GroupConv2d(2, 3, k, FixedRepresentation(shift_twist_stack(k)))
    K = gconv.expanded_kernel().view(3, G, 2, G, k, k)  # (o, g, i, h, y, x)
    theta = gconv.weight.view(3, 2, G, k, k)
    for g in range(G):
        expected = torch.rot90(torch.roll(theta, g, dims=2), g, dims=(-2, -1))
        torch.testing.assert_close(K[:, g], expected, rtol=0, atol=0)


def test_eval_mode_caches_the_kernel_until_parameters_change(device):
    torch.manual_seed(0)
    lift = LiftingConv2d(1, 2, 3, LearnedRepresentation(4, 9)).to(device).eval()
    x = torch.randn(1, 1, 6, 6, device=device)
    with torch.no_grad():
        y1 = lift(x)
        cached = lift._cache[1][0]
        assert lift(x).equal(y1) and lift._cache[1][0] is cached  # reused
        lift.representation.logits.add_(torch.randn(3, 9, 9, device=device))  # an in-place update ...
        y2 = lift(x)
        assert lift._cache[1][0] is not cached  # ... invalidates it
    torch.testing.assert_close(y2, lift.train()(x))
    assert lift._cache is None
    with torch.no_grad():  # moving the module to another dtype also invalidates the cache
        lift.eval()(x)
        assert lift.double()(x.double()).dtype == torch.float64


@pytest.mark.parametrize("setting, value", [("temperature", 0.01), ("n_iter", 1), ("tol", 0.5),
                                            ("method", "log")])
def test_the_eval_kernel_cache_follows_every_sinkhorn_setting(setting, value):
    # The cached kernel must be the kernel of the settings now in force: after a change, the
    # model answers exactly as a fresh model with the same weights and settings does.
    from wslib.models import WSCNN

    torch.manual_seed(0)
    model = WSCNN(hidden=2, num_blocks=2).eval()
    x = torch.randn(2, 1, 12, 12)
    with torch.no_grad():
        before = model(x)
        for m in model.modules():
            if isinstance(m, LearnedRepresentation):
                setattr(m, setting, value)
        after = model(x)
        fresh = WSCNN(hidden=2, num_blocks=2).eval()
        fresh.load_state_dict(model.state_dict())
        for m in fresh.modules():
            if isinstance(m, LearnedRepresentation):
                setattr(m, setting, value)
        expected = fresh(x)
    assert torch.equal(after, expected)
    if setting != "method":  # "log" and the automatic choice agree to rounding only
        assert not torch.equal(after, before)


def test_construction_errors_name_expected_and_given():
    with pytest.raises(ValueError, match=r"k² = 25.*4 9×9"):
        LiftingConv2d(1, 2, 5, FixedRepresentation(rotation_stack(3)))
    with pytest.raises(ValueError, match=r"\|H\|·k² = 36.*4 9×9"):
        GroupConv2d(1, 2, 3, FixedRepresentation(rotation_stack(3)))
    with pytest.raises(ValueError, match="shape"):
        FixedRepresentation(torch.zeros(4, 9, 8))
    with pytest.raises(ValueError, match="kernel_size"):
        LiftingConv2d(1, 2, 0, FixedRepresentation(rotation_stack(1)))


def test_call_errors_name_expected_and_given():
    lift = LiftingConv2d(3, 2, 5, FixedRepresentation(rotation_stack(5)))
    gconv = GroupConv2d(2, 2, 5, FixedRepresentation(shift_twist_stack(5)))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\); got \(2, 1, 9, 9\)"):
        lift(torch.zeros(2, 1, 9, 9))
    with pytest.raises(ValueError, match=r"\(B, 2, 4, H, W\).*got \(2, 2, 8, 9, 9\)"):
        gconv(torch.zeros(2, 2, 8, 9, 9))
    with pytest.raises(ValueError, match=r"\(B, 2, 4, H, W\).*got \(2, 8, 9, 9\)"):
        gconv(torch.zeros(2, 8, 9, 9))
    with pytest.raises(ValueError, match="too large for a 4×4 input"):
        lift(torch.zeros(1, 3, 4, 4))


def _losses_over_steps(shared: bool, method: str | None, steps: int = 3) -> list[float]:
    """A small WSCNN trained for a few AdamW steps on the full objective (CE + norm + ent)."""
    import torch.nn.functional as F

    from wslib.models import WSCNN
    from wslib.nn import representation_losses, shared_sinkhorn

    torch.manual_seed(0)
    model = WSCNN(hidden=2, num_blocks=3, n_iter=8, norm="batch").double()
    for m in model.modules():
        if isinstance(m, LearnedRepresentation):
            m.method = method
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    x, y = torch.randn(6, 1, 16, 16, dtype=torch.float64), torch.arange(6) % 10
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        if shared:
            with shared_sinkhorn(model):
                norm, ent = representation_losses(model)
                loss = F.cross_entropy(model(x), y) + 0.1 * norm + 0.01 * ent
        else:
            norm, ent = representation_losses(model)
            loss = F.cross_entropy(model(x), y) + 0.1 * norm + 0.01 * ent
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_shared_batched_sinkhorn_trains_exactly_like_separate_calls():
    # Old path: every layer runs its own log-domain Sinkhorn twice a step (forward, entropy).
    # New path: one batched call per shape and step, reused by both; same losses.
    old = _losses_over_steps(shared=False, method="log")
    for method in ("log", None):
        torch.testing.assert_close(_losses_over_steps(shared=True, method=method), old,
                                   rtol=1e-10, atol=1e-10)


def test_shared_sinkhorn_runs_once_per_shape_and_clears(monkeypatch):
    from wslib import nn as wnn
    from wslib.models import WSCNN

    calls = []
    real = wnn.sinkhorn
    monkeypatch.setattr(wnn, "sinkhorn", lambda logits, *a, **k: calls.append(logits.shape) or real(logits, *a, **k))
    model = WSCNN(hidden=2, num_blocks=4, n_iter=3)
    with wnn.shared_sinkhorn(model):
        with wnn.shared_sinkhorn(model):  # nested: reuses the outer block's stacks
            model(torch.randn(2, 1, 20, 20))
        wnn.representation_losses(model)
    # one call for the lifting stack (3, 25, 25), one for the three group stacks together
    assert sorted(calls) == [torch.Size([3, 25, 25]), torch.Size([9, 100, 100])]
    assert all(m._shared is None for m in model.modules() if isinstance(m, LearnedRepresentation))
    reps = [m for m in model.modules() if isinstance(m, LearnedRepresentation)]
    with wnn.shared_sinkhorn(model):
        inside = [r() for r in reps]
    for r, s in zip(reps, inside):
        torch.testing.assert_close(r(), s)


def test_compiled_training_step_gives_the_eager_losses(monkeypatch):
    # TrainConfig(compile=True) captures the whole loss (forward, shared Sinkhorn,
    # regularisers) as one graph; AOTAutograd captures its backward. The "aot_eager" backend
    # checks that capture without inductor's code generation, which takes minutes on 2 cores.
    from wslib import train as wtrain
    from wslib.models import WSCNN

    monkeypatch.setattr(wtrain, "COMPILE_BACKEND", "aot_eager")
    g = torch.Generator().manual_seed(0)
    data = (torch.randn(40, 1, 16, 16, generator=g), torch.randint(0, 10, (40,), generator=g))
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    histories = []
    for compile in (False, True):
        torch.manual_seed(0)
        model = WSCNN(hidden=2, num_blocks=3, n_iter=6, norm="batch")
        cfg = dict(epochs=2, batch_size=16, lambda_ent=0.01, bn_recalibration=0, compile=compile,
                   progress=False, device="cpu", snapshots=False)
        histories.append(wtrain.train(model, data, None, cfg))
    eager, compiled = histories
    assert counters["stats"]["unique_graphs"] >= 1  # it was captured, not run eagerly
    assert len(eager.train_loss) == 2
    for key in ("train_loss", "norm", "ent"):
        torch.testing.assert_close(getattr(compiled, key), getattr(eager, key), rtol=1e-5, atol=1e-6)


def test_stacks_with_a_tolerance_are_normalised_on_their_own():
    # The stopping test of a stack looks at that stack only: inside shared_sinkhorn each layer
    # must get exactly what it gets when called alone, although the group layers share a shape.
    from wslib import WSCNN
    from wslib.nn import LearnedRepresentation, shared_sinkhorn
    from wslib.sinkhorn import AUTHORS_TOL, sinkhorn_iterations

    torch.manual_seed(0)
    model = WSCNN(hidden=2, num_blocks=3, tol=AUTHORS_TOL)
    reps = [m for m in model.modules() if isinstance(m, LearnedRepresentation)]
    with torch.no_grad():
        reps[1].logits.mul_(8)  # converges more slowly than its neighbour of the same shape
    counts = [sinkhorn_iterations(r.logits, 20, AUTHORS_TOL) for r in reps]
    assert counts[1] > counts[2]
    alone = [r() for r in reps]
    with shared_sinkhorn(model):
        for r, a in zip(reps, alone):
            torch.testing.assert_close(r(), a, atol=0, rtol=0)
    assert "tol=1.001e-05" in repr(reps[0])
