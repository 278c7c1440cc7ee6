"""The child's side of edgezoo's parent-child protocol (edgezoo.export.child.ConverterChild is the
parent's): requests over a socket until the parent closes it, however the parent exits. Imports
neither torch nor a runtime, so a child imports only what its work needs."""

from __future__ import annotations

import sys
import traceback
from typing import Callable


def serve(fd: int, handle: Callable[[dict], object], on_job: Callable[[object], None] = lambda job: None) -> None:
    """``handle(request)`` answers each request; its exception goes back as (type, message,
    traceback), and the child serves on. A "job" request hands ``on_job`` the next job and takes
    the parent's sys.path (a user's model file may import its neighbours)."""
    from multiprocessing.connection import Connection

    from .quiet import quiet_native

    conn = Connection(fd)
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        if request["op"] == "job":
            sys.path[:] = request["path"]
            on_job(request["job"])
            continue
        try:
            with quiet_native():
                result = handle(request)
            conn.send(("ok", result))
        except Exception as exc:
            conn.send(("error", type(exc).__name__, str(exc), "".join(traceback.format_exception(exc))))
