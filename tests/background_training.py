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


def main(*names: str) -> int:
    from edgezoo import paths, zoo
    from edgezoo.judge import JUDGE
    from edgezoo.train import cache_key, trained_model

    specs = [zoo.get(name).small_variant() for name in names]
    if any(spec.metric_name == "digit_score" for spec in specs):
        # The generative models score their samples with the judge (the zoo's cnn, a two-thread
        # recipe), trained on first use: here first and at the tests' priority. Measured on 2
        # cores: at nice 19 it took 179 s midway, inside the diffusion model's training, and 149 s
        # at the start (two threads at the lowest priority beside the tests' one wait on each other).
        print("training the judge of generated digits", flush=True)
        trained_model(JUDGE)
    os.nice(19)  # from here on, a core only when the tests leave one idle
    for name, spec in zip(names, specs):
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
        print(f"training {name}", flush=True)
        trained_model(spec)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
