"""What machine and which package versions a figure was measured with. Imports no torch."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path

from .manifest import Host


def host() -> Host:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return Host(platform.machine(), platform.system(), cpu, os.cpu_count())


def versions(packages) -> dict[str, str | None]:
    """Python's version and each installed distribution's (None where it is not installed)."""
    out = {"python": platform.python_version()}
    for name in dict.fromkeys(packages):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out
