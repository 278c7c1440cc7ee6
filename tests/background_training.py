"""One background worker of the test session: trains small variants into the session's checkpoint
cache, at the lowest priority, taking each model in the order given unless another worker has
claimed it. Run by tests/conftest.py, one worker per core:

    python -I tests/background_training.py CLAIMS_DIR NAME...

A claim is a file made with O_EXCL in CLAIMS_DIR, so two workers never train the same model (the
second would only wait on edgezoo.train's lock, a core idle). A test that needs a checkpoint sooner
waits on that lock and loads what the worker cached.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def claim(claims: Path, name: str) -> bool:
    try:
        os.close(os.open(claims / name, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def main(claims: str, *names: str) -> int:
    os.nice(19)  # a core only when the tests leave one idle
    from edgezoo import zoo
    from edgezoo.train import trained_model

    for name in names:
        if claim(Path(claims), name):
            print(f"training {name}", flush=True)
            trained_model(zoo.get(name).small_variant())
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
