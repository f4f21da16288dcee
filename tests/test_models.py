import pytest
import torch

from wslib import CNN, GCNN, WSCNN, count_parameters, cyclic, representation_losses
from wslib.equivariance import assert_equivariant, image_action, invariant_action
from wslib.groups import rotation_stack, shift_twist_stack
from wslib.models import cifar_cnn, cifar_gcnn, cifar_wscnn


@pytest.mark.parametrize(
    "make, free, rep",
    [
        (CNN, 412_170, 0),
        (GCNN, 410_890, 0),
        (lambda: GCNN(hidden=16), 103_050, 0),  # the paper's "103 K"
        (WSCNN, 410_890, 121_875),
        (lambda: cifar_cnn(32), 428_170, 0),
        (lambda: cifar_cnn(64), 1_660_170, 0),
        (lambda: cifar_cnn(128), 6_544_906, 0),
        (cifar_gcnn, 1_632_394, 0),
        (cifar_wscnn, 1_632_394, 468_195),
    ],
)
def test_parameter_counts_match_the_paper(make, free, rep):
    counts = count_parameters(make())
    assert (counts["free"], counts["representation"]) == (free, rep)


def test_shapes():
    x = torch.randn(2, 1, 28, 28)
    for model in (CNN(hidden=8), GCNN(hidden=4), WSCNN(hidden=4)):
        assert model(x).shape == (2, 10)
    x = torch.randn(2, 3, 32, 32)
    for model in (cifar_cnn(8), cifar_gcnn(4), cifar_wscnn(4)):
        assert model(x).shape == (2, 10)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gcnn_is_invariant_to_quarter_turns(dtype, device):
    torch.manual_seed(0)
    model = GCNN(hidden=8).to(device, dtype)
    x = torch.randn(3, 1, 28, 28, dtype=dtype, device=device)
    assert_equivariant(model, x, image_action(cyclic(4)), invariant_action, range(4))


def test_cifar_gcnn_is_invariant_to_quarter_turns():
    torch.manual_seed(0)
    model = cifar_gcnn(4).double().eval()  # eval: batch statistics would differ per batch otherwise
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    assert_equivariant(model, x, image_action(cyclic(4)), invariant_action, range(4))


def test_wscnn_with_sharp_logits_behaves_like_the_gcnn(device):
    torch.manual_seed(0)
    gcnn, wscnn = GCNN(hidden=4).to(device), WSCNN(hidden=4).to(device)
    exact = [rotation_stack(5)] + [shift_twist_stack(5)] * 4
    with torch.no_grad():
        for g_conv, w_conv, stack in zip(gcnn.convs, wscnn.convs, exact):
            w_conv.weight.copy_(g_conv.weight)
            w_conv.bias.copy_(g_conv.bias)
            w_conv.representation.logits.copy_(100.0 * stack[1:])
        wscnn.head.load_state_dict(gcnn.head.state_dict())
    x = torch.randn(4, 1, 28, 28, device=device)
    torch.testing.assert_close(wscnn(x), gcnn(x), rtol=1e-4, atol=1e-5)
    assert_equivariant(wscnn, x, image_action(cyclic(4)), invariant_action, range(4), rtol=1e-4)


def test_representation_losses_cover_every_learned_stack():
    torch.manual_seed(0)
    model = WSCNN(hidden=4)
    norm, ent = representation_losses(model)
    manual = sum(c.representation.normalization_loss() for c in model.convs)
    torch.testing.assert_close(norm, manual)
    assert ent > 0
    norm0, ent0 = representation_losses(GCNN(hidden=4))
    assert norm0 == 0 and ent0 == 0
    (norm + ent).backward()
    assert all(c.representation.logits.grad is not None for c in model.convs)


def test_a_stack_of_one_has_nothing_to_learn_and_trains():
    # |H| = 1 with the identity anchored: no learned matrix, so both regularisers are 0 (not
    # the NaN mean of an empty stack) and training a step is finite.
    from wslib.train import train

    torch.manual_seed(0)
    model = WSCNN(hidden=2, num_blocks=2, group_size=1)
    assert model.convs[0].representation.logits.shape[0] == 0
    norm, ent = representation_losses(model)
    assert norm == 0 and ent == 0
    torch.testing.assert_close(model.convs[1].representation(), torch.eye(25)[None])
    x, y = torch.randn(16, 1, 12, 12), torch.arange(16) % 10
    history = train(model, (x, y), config=dict(epochs=1, batch_size=8, progress=False,
                                               device="cpu"))
    assert all(torch.isfinite(torch.tensor(history.train_loss + history.norm + history.ent)))


def _rot90_reference_gcnn(model: GCNN, x: torch.Tensor) -> torch.Tensor:
    """The C4 G-CNN written directly with torch.rot90 and roll, not with permutation matrices.

    Lifting: out[:, o, r] = conv(x, rot90(θ_o, r)). Group conv: out[:, o, r] = Σ_i Σ_h
    conv(f[:, i, h], rot90(θ_{o, i, h − r}, r)) -- the filter rotated and its group axis shifted.
    """
    F = torch.nn.functional
    k = model.convs[0].kernel_size
    conv = model.convs[0]
    theta = conv.weight.view(conv.out_channels, conv.in_channels, k, k)
    f = torch.stack([F.conv2d(x, torch.rot90(theta, r, dims=(-2, -1)), conv.bias) for r in range(4)], 2)
    f = F.relu(model.norms[0](f))
    for conv, norm in zip(model.convs[1:], model.norms[1:]):
        b, c, g, h, w = f.shape
        theta = conv.weight.view(conv.out_channels, c, g, k, k)
        out = [F.conv2d(f.reshape(b, c * g, h, w),
                        torch.rot90(theta.roll(r, dims=2), r, dims=(-2, -1)).reshape(-1, c * g, k, k),
                        conv.bias) for r in range(4)]
        f = F.relu(norm(torch.stack(out, 2)))
    return model.head(f.mean(dim=(-3, -2, -1)))


@pytest.mark.parametrize("norm", ["layer", "batch"])
def test_gcnn_equals_a_rot90_reference_implementation(norm):
    torch.manual_seed(0)
    model = GCNN(hidden=3, norm=norm).double().eval()
    x = torch.randn(2, 1, 28, 28, dtype=torch.float64)
    torch.testing.assert_close(model(x), _rot90_reference_gcnn(model, x), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("make", [CNN, GCNN, WSCNN])
def test_batch_norm_adds_no_parameters(make):
    assert count_parameters(make(norm="batch")) == count_parameters(make())


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gcnn_is_invariant_in_training_and_eval_mode(training):
    # Batch statistics over (batch, group, space) are themselves invariant to a quarter turn of
    # every image in the batch, so even the training-mode forward pass is exactly invariant.
    torch.manual_seed(0)
    model = GCNN(hidden=4, norm="batch").double()
    with torch.no_grad():  # move the running statistics away from their initial (0, 1)
        for _ in range(3):
            model(torch.randn(8, 1, 28, 28, dtype=torch.float64))
    model.train(training)
    x = torch.randn(3, 1, 28, 28, dtype=torch.float64)
    assert_equivariant(model, x, image_action(cyclic(4)), invariant_action, range(4))


def test_unknown_norm_is_refused():
    with pytest.raises(ValueError, match="norm must be one of"):
        GCNN(hidden=4, norm="instance")
