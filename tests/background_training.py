"""The test session's background worker: trains small variants into the session's checkpoint
cache, at the lowest priority, in the order given, skipping any that is cached already or that
another process (a test) is training at that moment. Run by tests/conftest.py:

    python -I tests/background_training.py NAME...

A test that needs a checkpoint the worker is training waits on edgezoo.train's lock and loads what
the worker cached; one the worker has not reached yet, the test trains itself.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time


def main(*names: str) -> int:
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
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
