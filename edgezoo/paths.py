"""Where edgezoo keeps trained checkpoints: $EDGEZOO_HOME, else the user's cache folder."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    env = os.environ.get("EDGEZOO_HOME")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "edgezoo"


def checkpoint_path(model_name: str, tag: str = "") -> Path:
    return home() / "checkpoints" / f"{model_name}{('-' + tag) if tag else ''}.pt"
