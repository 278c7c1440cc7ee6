"""Silencing what converters and runtimes print at the file-descriptor level."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys


@contextlib.contextmanager
def quiet_native():
    """Converters and runtimes print pages of progress, warnings and INFO lines to stdout/stderr,
    from C++ too: silence both file descriptors while they work."""
    sink = os.open(os.devnull, os.O_WRONLY)
    saved = [os.dup(1), os.dup(2)]
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(sink, 1)
    os.dup2(sink, 2)
    levels = {name: logging.getLogger(name).level for name in ("torch", "torch.onnx", "torch.export", "nncf", "absl")}
    for name in levels:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, sink):
            os.close(fd)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
