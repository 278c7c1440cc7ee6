"""The test session's background worker: trains small variants into the session's checkpoint
cache, at the lowest priority, in the order given, skipping any that is cached already or that
another process (a test) is training at that moment, and exports each one it trained as the
tests' ``zoo_export`` fixture would. Run by tests/conftest.py:

    python -I tests/background_training.py EXPORTS_DIR NAME...

A test that needs a checkpoint the worker is training waits on edgezoo.train's lock and loads what
the worker cached; one the worker has not reached yet, the test trains itself. The same for the
export (``export_lock``): one the worker made is read back from its manifest; one the worker is
making is waited for; one it has not started, the test makes itself, holding the lock, so the
worker skips it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import time
from pathlib import Path

DONE = "exported"  # the marker written once an export returned


@contextlib.contextmanager
def export_lock(exports: Path, name: str, wait: bool):
    """Holds ``name``'s export lock; yields the export's folder, or None when ``wait`` is False and
    another process holds the lock."""
    folder = exports / name
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder.with_suffix(".lock"), "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield None
            return
        try:
            yield folder
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def export_small(name: str, folder: Path):
    """The small variant exported with int8 into ``folder``/out, as the tests' fixture does."""
    from edgezoo import zoo
    from edgezoo.pipeline import export

    result = export(zoo.get(name).small_variant(), int8=True, out=folder / "out", calib_samples=64)
    (folder / DONE).write_text("")
    return result


def main(exports: str, *names: str) -> int:
    os.nice(19)  # a core only when the tests leave one idle
    from edgezoo import paths, zoo
    from edgezoo.train import cache_key, trained_model

    start = time.monotonic()
    for name in names:
        spec = zoo.get(name).small_variant()
        checkpoint = paths.checkpoint_path(spec.name, cache_key(spec))
        if checkpoint.is_file():
            continue
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        with open(checkpoint.with_suffix(".lock"), "a") as lock:
            try:  # only a peek: trained_model takes the lock itself
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a test is training it now
            fcntl.flock(lock, fcntl.LOCK_UN)
        print(f"{time.monotonic() - start:7.1f} s  training {name}", flush=True)
        trained_model(spec)
        print(f"{time.monotonic() - start:7.1f} s  trained {name}", flush=True)
        with export_lock(Path(exports), name, wait=False) as folder:
            if folder is not None and not (folder / DONE).is_file():
                export_small(name, folder)
                print(f"{time.monotonic() - start:7.1f} s  exported {name}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
