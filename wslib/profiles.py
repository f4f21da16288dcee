"""Execution profiles: how much compute the book's notebooks spend.

One switch, the environment variable ``WSLIB_PROFILE``, selects a profile:

* ``quick``    -- CI: every chapter runs in a few minutes on 2 CPU cores, offline;
* ``tutorial`` -- the default book build on a laptop CPU: large enough to *show* each claim;
* ``paper``    -- the paper's settings, for a GPU with the full datasets.
"""
from __future__ import annotations

import os

__all__ = ["PROFILES", "DEFAULT_PROFILE", "current_profile"]

PROFILES = ("quick", "tutorial", "paper")
DEFAULT_PROFILE = "tutorial"


def current_profile() -> str:
    """The profile named by ``WSLIB_PROFILE`` (default ``tutorial``); unknown names raise."""
    name = os.environ.get("WSLIB_PROFILE", DEFAULT_PROFILE).strip().lower()
    if name not in PROFILES:
        raise ValueError(f"WSLIB_PROFILE={name!r} is not one of {', '.join(PROFILES)}")
    return name
