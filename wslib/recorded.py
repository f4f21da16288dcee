"""Recorded results and committed checkpoints, read from the repository or fetched from it.

The book's chapters 5 and 6 show runs that took hours (``results/**.json``) and the trained
models they saved (``checkpoints/*.pt``, ``experiments/checkpoints/*.pt``). In a clone of the
repository these files are on disk. A pip-installed ``wslib`` (a fresh Colab runtime, say) has
none of them, so :func:`load_result` and :func:`load_checkpoint_file` then download the file
once from the repository's raw files on GitHub, cache it under
``wslib.data.default_root() / "recorded"``, and read the cached copy from then on. When neither
works (no clone and no internet) they raise :class:`RecordedUnavailable`, naming the file.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Sequence

import torch

from .data.common import default_root
from .train import load_checkpoint

__all__ = [
    "REPOSITORY_URL",
    "BRANCH",
    "RecordedUnavailable",
    "repository_root",
    "raw_url",
    "recorded_path",
    "load_result",
    "load_checkpoint_file",
    "MODEL_NAMES",
    "orderings_rows",
]

# The repository's address as _config.yml writes it (tests/test_recorded.py checks that the two
# agree): a pip-installed wslib has no _config.yml to read it from.
REPOSITORY_URL = "https://github.com/wslib-book/learning-symmetries"
BRANCH = "main"
TIMEOUT_S = 30.0


class RecordedUnavailable(FileNotFoundError):
    """A recorded file is neither in the repository on disk nor downloadable (e.g. offline)."""


def repository_root() -> Path:
    """The folder that holds ``wslib/``: the repository's root in a clone."""
    return Path(__file__).resolve().parents[1]


def raw_url(path: str, repository: str = REPOSITORY_URL, branch: str = BRANCH) -> str:
    """The raw-file address of ``path`` in a GitHub repository.

    ``https://github.com/OWNER/NAME`` becomes
    ``https://raw.githubusercontent.com/OWNER/NAME/<branch>/<path>``.

    Raises:
        ValueError: ``repository`` is not a ``https://github.com/OWNER/NAME`` address, or
            ``path`` is absolute or leaves the repository (``..``).
    """
    prefix = "https://github.com/"
    repo = repository.rstrip("/").removesuffix(".git")
    parts = repo[len(prefix):].split("/") if repo.startswith(prefix) else []
    if len(parts) != 2 or not all(parts):
        raise ValueError("not a GitHub repository address (https://github.com/OWNER/NAME): "
                         f"{repository!r}")
    rel = _relative(path)
    return f"https://raw.githubusercontent.com/{parts[0]}/{parts[1]}/{branch}/{rel}"


def _relative(path: str) -> str:
    rel = Path(path)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise ValueError("a recorded file is named by its path inside the repository; "
                         f"got {path!r}")
    return rel.as_posix()


def _download(url: str, timeout: float = TIMEOUT_S) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (https only)
        return response.read()


def _write_atomically(data: bytes, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _check_json(data: bytes) -> None:
    """Raise ValueError unless ``data`` is UTF-8 JSON."""
    json.loads(data.decode("utf-8"))


def _check_checkpoint(data: bytes) -> None:
    """Raise ValueError unless ``data`` loads as a checkpoint with ``weights_only=True``."""
    try:
        torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for bad files
        raise ValueError(f"not a readable checkpoint ({type(e).__name__})") from e


def _valid(data: bytes, validate: Callable[[bytes], None] | None) -> str | None:
    """None if ``data`` passes ``validate``, else why not (one line)."""
    if validate is None:
        return None
    try:
        validate(data)
    except (ValueError, UnicodeDecodeError) as e:
        return str(e).splitlines()[0] if str(e) else type(e).__name__
    return None


def recorded_path(path: str, fetch: Callable[[str], bytes] | None = None,
                  cache: Path | None = None,
                  validate: Callable[[bytes], None] | None = None) -> Path:
    """A local file holding the repository's ``path``: the clone's own, else a cached download.

    Args:
        path: the file's path inside the repository, e.g. ``"results/ch6/orderings.json"``.
        fetch: downloads a URL and returns its bytes (default: ``urllib``); tests replace it.
        cache: the download cache (default ``default_root() / "recorded"``).
        validate: raises ``ValueError`` for bytes that are not the file (an HTML error page
            served in its place, a truncated download). A download is cached only once it
            passes, and a cached copy that does not pass is downloaded again.

    Returns:
        the path of a readable local copy.

    Raises:
        RecordedUnavailable: the file is not on disk and could not be downloaded, or what was
            downloaded is not the file; the message names the file, the address tried and the
            reason. Nothing is cached then.
    """
    rel = _relative(path)
    local = repository_root() / rel
    if local.is_file():
        return local
    cached = (cache if cache is not None else default_root() / "recorded") / rel
    if cached.is_file() and _valid(cached.read_bytes(), validate) is None:
        return cached
    url = raw_url(rel)
    advice = f"clone the repository ({REPOSITORY_URL}) or connect to the internet to see it"
    try:
        data = (fetch or _download)(url)
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        raise RecordedUnavailable(
            f"the recorded file {rel} is not in this copy of wslib and could not be downloaded "
            f"from {url} ({type(e).__name__}: {e}); {advice}") from e
    problem = _valid(data, validate)
    if problem is not None:
        start = data[:40].decode("utf-8", "replace").strip()
        raise RecordedUnavailable(
            f"the download of {rel} from {url} is not the file ({problem}; it begins "
            f"{start!r}) and was not cached; {advice}")
    _write_atomically(data, cached)
    return cached


def load_result(path: str, fetch: Callable[[str], bytes] | None = None,
                cache: Path | None = None) -> dict:
    """A recorded result (a JSON file such as ``results/ch6/orderings_full.json``) as a dict.

    Read from the repository when it is on disk, else downloaded once and cached (see
    :func:`recorded_path`, whose arguments it shares).

    Raises:
        RecordedUnavailable: neither on disk nor downloadable.
        ValueError: the file is not UTF-8 or not valid JSON (the message names it).
    """
    p = recorded_path(path, fetch, cache, validate=_check_json)
    try:
        return json.loads(p.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ValueError(f"{path} (read from {p}) is not UTF-8 text: byte {e.start} is "
                         f"{e.object[e.start:e.start + 1]!r}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} (read from {p}) is not valid JSON: {e}") from e


def load_checkpoint_file(path: str, fetch: Callable[[str], bytes] | None = None,
                         cache: Path | None = None) -> dict:
    """A committed checkpoint (``checkpoints/*.pt``) as a dict of tensors and plain values.

    Loaded onto the CPU with ``torch.load(..., weights_only=True)``, so no code in the file
    runs. What the dict holds depends on who wrote it: ``wslib.train`` checkpoints have the
    model's state dict under ``"model"``, exported ones (``experiments/export_checkpoint.py``)
    are the state dict itself.

    Raises:
        RecordedUnavailable: neither on disk nor downloadable.
        ValueError: the file is not a readable checkpoint (the message names it).
    """
    p = recorded_path(path, fetch, cache, validate=_check_checkpoint)
    try:
        return load_checkpoint(p)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from e


# The model keys of experiments/orderings.py, as the book names the models.
MODEL_NAMES = {"cnn": "CNN", "gcnn": "G-CNN", "wscnn": "WSCNN", "wscnn+ent": "WSCNN + ent"}


def orderings_rows(doc: dict, settings: Sequence[str] | None = None) -> list[dict]:
    """One flat row per run recorded by ``experiments/orderings.py`` (for a table).

    Args:
        doc: the loaded JSON (``{"runs": [...], ...}``), e.g. from :func:`load_result`.
        settings: keep only runs of these settings (e.g. ``["rotated 0-360"]``); default all.

    Returns:
        dicts with ``setting``, ``model`` (the book's name, e.g. ``"G-CNN"``), ``width h``
        (the group models' channels; the CNN has 2h),
        ``seed``, ``train digits``, ``steps`` (computed from epochs and batches of 64 for runs
        recorded without it), ``wall (min)`` and ``test acc. (%)``, in the order the runs were
        recorded.
    """
    rows = []
    for r in doc.get("runs", []):
        if settings is not None and r["setting"] not in settings:
            continue
        wall, train = r.get("wall_s"), r.get("data", {}).get("train")
        steps = r.get("steps")
        if steps is None and train and r.get("epochs"):  # early records: batches of 64
            steps = r["epochs"] * -(-train // 64)
        rows.append({"setting": r["setting"], "model": MODEL_NAMES.get(r["model"], r["model"]),
                     "width h": r.get("hidden"), "seed": r.get("seed", 0),
                     "train digits": train, "steps": steps,
                     "wall (min)": None if wall is None else round(wall / 60, 1),
                     "test acc. (%)": round(100 * r["test_acc"], 2)})
    return rows
