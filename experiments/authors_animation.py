"""Read the authors' published animation of their learned lifting stack as numbers.

The paper's authors show the training of their rotated-MNIST WSCNN (32 channels, a lifting and
four group layers, layer norm, AdamW lr 1e-2, batch 64, 100 epochs) as an animated GIF at the
root of their repository: 101 frames, each with four 25×25 panels drawn by matplotlib's
``imshow`` (viridis, each panel scaled to its own min..max) -- the anchored identity R0 and the
three learned matrices R1..R3 of the 5×5 lifting kernel. The frames are not labelled; reading
frame t as "after epoch t" (937 steps of 64 digits) is an inference from the config.

This script turns every frame back into three 25×25 matrices (each cell's colour mapped to the
nearest viridis entry, so only values relative to the panel's range survive) and measures them
as the book measures its own runs: :func:`wslib.analysis.row_agreement` against the three grid
rotations, and the mean row maximum relative to the panel's range. The GIF is not part of this
repository; the script downloads it (or reads a copy given with ``--gif``), checks its SHA-256
and writes ``results/ch5/emergence/authors_animation.json`` with its provenance.

Usage:
    python experiments/authors_animation.py [--gif PATH]
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import urllib.request
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from PIL import Image, ImageSequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, C4_NAMES, provenance, write_json  # noqa: E402

from wslib.analysis import row_agreement  # noqa: E402
from wslib.groups import rotation_stack  # noqa: E402

REPOSITORY = "https://github.com/computri/learnable-weight-sharing"
URL = "https://raw.githubusercontent.com/computri/learnable-weight-sharing/main/learned_lifting.gif"
STEPS_PER_EPOCH = 60_000 // 64  # 937 full batches; the authors' loader may count the last one
OUT = ROOT / "results/ch5/emergence/authors_animation.json"

VIRIDIS = colormaps["viridis"](np.linspace(0, 1, 256))[:, :3] * 255  # (256, 3)


def panel_boxes(frame: np.ndarray) -> list[tuple[int, int, int, int]]:
    """(left, right, top, bottom) of every panel: the runs of columns and rows that are not
    white background, inner edges included (matplotlib draws a one-pixel frame around each)."""
    ink = frame.sum(axis=-1) < 3 * 235
    cols = np.flatnonzero(ink.any(axis=0))
    rows = np.flatnonzero(ink.any(axis=1))
    breaks = np.flatnonzero(np.diff(cols) > 1)
    lefts = np.r_[cols[0], cols[breaks + 1]]
    rights = np.r_[cols[breaks], cols[-1]]
    return [(int(a), int(b), int(rows[0]), int(rows[-1])) for a, b in zip(lefts, rights)]


def panel_values(frame: np.ndarray, box: tuple[int, int, int, int], n: int = 25) -> np.ndarray:
    """The (n, n) values in [0, 1] of one panel: each cell's centre colour, inverted through
    viridis (nearest of its 256 entries)."""
    left, right, top, bottom = box
    # centres of n equal cells spanning the box without its frame
    xs = np.round(left + 1 + (np.arange(n) + 0.5) * (right - left - 1) / n).astype(int)
    ys = np.round(top + 1 + (np.arange(n) + 0.5) * (bottom - top - 1) / n).astype(int)
    colours = frame[np.ix_(ys, xs)].astype(np.float64)  # (n, n, 3)
    dist = ((colours[..., None, :] - VIRIDIS) ** 2).sum(axis=-1)  # (n, n, 256)
    return dist.argmin(axis=-1) / 255.0


def decode(gif: bytes) -> list[dict]:
    frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(Image.open(io.BytesIO(gif)))]
    boxes = panel_boxes(frames[-1])
    if len(boxes) != 4:
        raise ValueError(f"expected four panels (R0..R3) in a frame, found {len(boxes)}")
    rotations = rotation_stack(5, 4)[1:]
    out = []
    for t, frame in enumerate(frames):
        learned = np.stack([panel_values(frame, box) for box in boxes[1:]])  # R1..R3
        agree = row_agreement(learned, rotations, C4_NAMES[1:])
        out.append({"frame": t, "epoch": t, "step": t * STEPS_PER_EPOCH,
                    "rows_rotation": agree.names, "rows_agreeing": agree.rows_agreeing,
                    "relative_row_max": [round(float(v), 3) for v in learned.max(axis=2).mean(axis=1)]})
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gif", type=Path, help="a local copy of the animation (default: download it)")
    args = p.parse_args()
    if args.gif is not None:
        gif, source = args.gif.read_bytes(), f"local copy of {URL}"
    else:
        with urllib.request.urlopen(URL, timeout=60) as r:
            gif, source = r.read(), URL
    digest = hashlib.sha256(gif).hexdigest()
    known = OUT.exists() and json.loads(OUT.read_text())["gif"]["sha256"]
    if known and known != digest:
        raise SystemExit(f"error: this GIF (sha256 {digest[:12]}…) is not the one the record was "
                         f"made from ({known[:12]}…); the animation may have changed")
    frames = decode(gif)
    write_json({
        "what": "the authors' published animation of their learned lifting stack, decoded",
        "gif": {"url": URL, "repository": REPOSITORY, "added_in_commit": "fa4d193 (2025-04-28)",
                "sha256": digest, "bytes": len(gif), "read_from": source},
        "run": {"hidden": 32, "blocks": 5, "norm": "layer", "lr": 1e-2, "rep_lr": 1e-2,
                "weight_decay": 1e-4, "lambda_norm": 0.1, "lambda_ent": 0.0, "batch_size": 64,
                "epochs": 100, "sinkhorn": "at most 20 iterations, stop once allclose to 1",
                "source": "configs/mnist/wscnn.yml in the authors' repository"},
        "reading": ("frame t read as after epoch t (an inference: frames are unlabelled); each "
                    "panel's colours are relative to its own range, so only the pattern and "
                    "relative values survive; rows agreeing = wslib.analysis.row_agreement "
                    "against r90, r180, r270 (np.rot90 on the row-major 5x5 grid)"),
        "provenance": provenance("python " + " ".join(sys.argv)),
        "frames": frames,
    }, OUT)
    for f in frames[::10]:
        print(f"epoch {f['epoch']:3d}  {f['rows_rotation']} {f['rows_agreeing']}")


if __name__ == "__main__":
    main()
