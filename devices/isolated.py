"""Run an artifact once in a child process first, where a native crash cannot take edgezoo down.

A runtime that aborts in C++ (measured: LiteRT 2.3 on ai-edge-quantizer's full-integer GPT, SIGABRT
at load, nothing printed) would kill the whole export: no manifest, no row saying why, the formats
after it never made. In a child, the crash becomes an error naming the runtime and the signal.

    python -m edgezoo.devices.isolated MODULE:FUNCTION ARTIFACT THREADS INPUTS.npz
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

PROBE_TIMEOUT_S = 300


class ArtifactCrashed(RuntimeError):
    """The runtime died (a signal) or hung while loading and running the artifact."""


def probe(runner: Callable[[Path, int], object], runtime: str, path: Path, threads: int, inputs: Sequence[np.ndarray],
          timeout: float = PROBE_TIMEOUT_S) -> None:
    """Loads ``path`` with ``runner`` and runs ``inputs`` through it once, in a child process.
    Raises ArtifactCrashed if the child dies by a signal or outlives ``timeout``, RuntimeError with
    the child's last line if it fails in Python; returns if the artifact ran."""
    target = f"{runner.__module__}:{runner.__qualname__}"
    with tempfile.TemporaryDirectory(prefix="edgezoo-probe-") as tmp:
        feed = Path(tmp) / "inputs.npz"
        np.savez(feed, *[np.asarray(x) for x in inputs])
        try:
            proc = subprocess.run([sys.executable, "-m", __name__, target, str(path), str(threads), str(feed)],
                                  capture_output=True, text=True, timeout=timeout, cwd=tmp)
            # cwd: `-m` puts it first on sys.path, and a source checkout's edgezoo/ (without the
            # mapped devices/, export/, quantize/) would shadow the installed package.
        except subprocess.TimeoutExpired:
            raise ArtifactCrashed(f"{runtime} did not finish loading and running the artifact in {timeout:.0f} s (child process killed)") from None
    if proc.returncode == 0:
        return
    said = [line for line in (proc.stderr or "").splitlines() if line.strip()]
    last = f": {said[-1].strip()[:300]}" if said else " with nothing printed"
    if proc.returncode < 0:
        name = signal.Signals(-proc.returncode).name if -proc.returncode in signal.valid_signals() else f"signal {-proc.returncode}"
        raise ArtifactCrashed(f"{runtime} crashed ({name}) loading and running the artifact, in a child process{last}")
    raise RuntimeError(f"{runtime} failed loading and running the artifact{last}")


def _main(argv: list[str]) -> int:
    import importlib

    target, path, threads, feed = argv
    module, name = target.split(":")
    runner = getattr(importlib.import_module(module), name)(Path(path), int(threads))
    with np.load(feed) as arrays:
        runner([arrays[f"arr_{i}"] for i in range(len(arrays.files))])
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
