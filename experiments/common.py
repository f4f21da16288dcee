"""Shared helpers of the experiment scripts: provenance, atomic JSON, hybrid models, C4 recovery.

Everything here is glue around ``wslib``; the scripts in this folder are investigations whose
JSON results the book's chapters load (results/ch5, results/ch6).
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from wslib.groups import rotation_stack, shift_twist_stack

ROOT = Path(__file__).resolve().parents[1]


# What the runs themselves write: a change there does not make the code that ran differ from HEAD.
RECORDS = ("results", "checkpoints", "experiments/logs", "experiments/checkpoints")


def git_commit() -> str:
    """The repository's HEAD commit, and '+dirty' when tracked files other than the recorded
    results, logs and checkpoints (which running experiments keep rewriting) differ from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "."]
                               + [f":!{path}" for path in RECORDS], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def provenance(command: str, **extra: Any) -> dict[str, Any]:
    """Who made a result: command, commit, device, host, torch version, threads, UTC time."""
    return {"command": command, "git_commit": git_commit(), "device": "cpu",
            "cpu": platform.processor() or platform.machine(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **extra}


def write_json(obj: Any, path: str | Path) -> None:
    """Write JSON atomically (temporary file in the same folder, then os.replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


C4_NAMES = ["e", "r90", "r180", "r270"]


def c4_recovery(stack: torch.Tensor) -> dict[str, Any]:
    """Nearest C4 element, its convex weight and sharpness of each learned lifting matrix.

    ``stack`` is the (4, 25, 25) lifting stack, identity first (anchored); the three learned
    matrices are compared with the four exact rotations of the 5×5 grid.
    """
    from wslib.analysis import recovery

    rec = recovery(stack[1:], rotation_stack(5, 4), C4_NAMES)
    return {"element": [C4_NAMES[g] for g in rec.element], "weight": [round(w, 4) for w in rec.weight],
            "row_max": [round(r, 4) for r in rec.row_max],
            "coefficients": [[round(float(c), 4) for c in row] for row in rec.coefficients]}


def reached_goal(rec: dict[str, Any], threshold: float = 0.7) -> bool:
    """The emergence goal: R1, R2, R3 cover r90, r180, r270 (in any order), each weight ≥ threshold."""
    return sorted(rec["element"]) == ["r180", "r270", "r90"] and min(rec["weight"]) >= threshold
