"""Runs portable.py's jobs (`python portable.py run JOB.json`) in a process of any Python: this
host's (a bundle's expected outputs, verify's x86 side) or the emulated aarch64 one (verify's other
side). One item at a time, each awaited with a timeout; a process that dies or hangs fails the
item it was on, and the rest go to a new process."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
from pathlib import Path

from ..errors import how_it_ended


def run_job(cmd: list[str], env: dict, items: list[dict], folder: Path, timeout: float, advance) -> tuple[dict, dict | None]:
    """Runs portable.py's job over ``items`` in ``cmd``'s process; one item at a time it waits
    ``timeout`` seconds for its line. A process that dies or hangs fails the item it was on, and
    the items after it go to a new process (all fail alike if it dies before it starts).
    Returns {item id: what the script said (with "out")} and the script's first line."""
    folder.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    header = None
    pending = list(items)
    attempt = 0
    while pending:
        attempt += 1
        job = folder / f"job-{attempt}.json"
        job.write_text(json.dumps({"threads": 1, "items": pending}))
        errors = open(folder / f"job-{attempt}.stderr", "w+")
        proc = subprocess.Popen([*cmd, "run", str(job)], stdout=subprocess.PIPE, stderr=errors, stdin=subprocess.DEVNULL, text=True,
                                env=env, start_new_session=True)
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True).start()
        done, started = 0, False
        try:
            while done < len(pending):
                try:
                    line = lines.get(timeout=timeout)
                except queue.Empty:
                    results[pending[done]["id"]] = {"status": "failed", "error": f"did not finish in {timeout:g} s (process killed)"}
                    done += 1
                    advance(1)
                    break
                if line is None:  # the process ended before saying every item
                    why = _death(proc, errors)
                    stop = done + 1 if started else len(pending)
                    for item in pending[done:stop]:
                        results[item["id"]] = {"status": "failed", "error": why}
                        advance(1)
                    done = stop
                    break
                said = _parse(line)
                if said is None:
                    continue
                if said.get("started"):
                    started, header = True, said
                    continue
                if said.get("id") == pending[done]["id"]:
                    results[said["id"]] = {**said, "out": pending[done]["out"]}
                    done += 1
                    advance(1)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            errors.close()
        pending = pending[done:]
    return results, header


def _pump(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def _parse(line: str) -> dict | None:
    try:
        said = json.loads(line)
    except ValueError:
        return None  # a runtime's own chatter on stdout
    return said if isinstance(said, dict) else None


def _death(proc: subprocess.Popen, errors) -> str:
    code = proc.wait()
    errors.seek(0)
    tail = " ".join(l.strip() for l in errors.read().strip().splitlines()[-2:])[:200]
    why = f"the process died of {how_it_ended(code)}" if code < 0 else f"the process ended ({how_it_ended(code)})"
    return f"{why}{': ' + tail if tail else ''}"
