"""Checkpoint files: written atomically (a temporary file, then ``os.replace``, so a crash never
leaves half a file), loaded onto the CPU without running code, and checked for what the training
loop needs; and the check, before any work, that a file or folder can be written at a path.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch


def save_checkpoint(obj: dict, path: str | Path) -> None:
    """Write ``obj`` with ``torch.save`` atomically: a temporary file in the same folder, then
    ``os.replace``, so a crash mid-write never leaves a truncated checkpoint behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint onto the CPU with ``weights_only=True`` (no arbitrary code runs).

    Raises:
        FileNotFoundError: there is no file at ``path``.
        ValueError: ``path`` is a directory, or the file is not a checkpoint (truncated,
            corrupted, or written by something other than :func:`save_checkpoint`); the message
            names the file.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a directory, not a checkpoint file")
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types (zip, unpickling, runtime) for bad files
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(
            f"{path} is not a readable checkpoint: expected a file written by "
            f"wslib.train.save_checkpoint (torch.save of tensors and plain Python values, "
            f"loadable with weights_only=True); loading failed with {type(e).__name__}: {reason}"
        ) from e
    if not isinstance(obj, dict):
        raise ValueError(f"{path} holds a {type(obj).__name__}, not a checkpoint dict")
    return obj


# What train() writes into, and needs from, its checkpoint.
_TRAINING_STATE_KEYS = ("model", "optimizer", "epoch", "history", "config")


def _load_training_state(path: str | Path) -> dict:
    state = load_checkpoint(path)
    missing = [k for k in _TRAINING_STATE_KEYS if k not in state]
    if missing or not all(isinstance(state[k], dict) for k in ("model", "optimizer", "history", "config")):
        raise ValueError(
            f"{path} is not a training checkpoint of wslib.train.train: expected the keys "
            f"{', '.join(_TRAINING_STATE_KEYS)}"
            + (f"; missing {', '.join(missing)}" if missing else "; some are not dicts")
            + ". Delete it or point TrainConfig.checkpoint elsewhere."
        )
    return state


def _check_writable_path(path: str | Path, what: str, folder: bool = False) -> Path:
    """``path`` if a file (``folder=False``) or a folder can be written there: it is not the
    other kind, and the nearest existing folder above it is a folder we may write in (tried
    with an unnamed temporary file). Else a ValueError naming ``what``."""
    path = Path(path).expanduser()
    if path.exists() and path.is_dir() != folder:
        kind = "a directory, not a file" if path.is_dir() else "a file, not a directory"
        raise ValueError(f"{what} {path} is {kind}")
    above = path if folder else path.parent
    while not above.exists() and above != above.parent:
        above = above.parent
    if not above.is_dir():
        raise ValueError(f"{what} {path} cannot be created: {above} is a file, not a directory")
    try:
        with tempfile.TemporaryFile(dir=above):
            pass
    except OSError as err:
        raise ValueError(f"{what} {path} is not writable: {err.strerror or err} in {above}") from None
    return path
