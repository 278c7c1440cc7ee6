"""The output folder an export writes into, and what in it is edgezoo's.

- A lock: two exports into the same folder at once would mix their files; the second is refused
  in one line. The kernel drops the lock when its process dies, kill -9 included.
- What is edgezoo's: the files an edgezoo manifest there lists by name and sha256. A user's file
  that has an artifact's name (or an edgezoo file changed since) is never replaced or removed:
  the run refuses in one line before any work.
- Interruptions: the old manifest is moved aside before the first file changes, and the new one
  is written last, so a run stopped anywhere (Ctrl-C, SIGTERM, kill -9) leaves no manifest that
  describes files it did not make. What the moved-aside manifest listed stays edgezoo's for the
  next run; staging folders and temporary files of a killed run are removed at the next start.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from .errors import BadInput
from .fileio import sha256_file, write_text_atomic

MANIFEST = "manifest.json"
LOG = "export.log"
LOCK = ".edgezoo.lock"
PREVIOUS = ".edgezoo-previous.json"      # what an interrupted run's predecessor owned
STAGING_PREFIX = ".edgezoo-staging-"
_LEFTOVERS = (f"{STAGING_PREFIX}*", ".edgezoo-write-test-*", f".{MANIFEST}.*.tmp", f".{LOG}.*.tmp")


@dataclass
class Claim:
    """The folder, held for one export: ``owned`` are the files earlier manifests listed."""

    out_dir: Path
    owned: dict[str, str]

    def finished(self) -> None:
        """The new manifest is written: it alone says what is edgezoo's now."""
        (self.out_dir / PREVIOUS).unlink(missing_ok=True)


@contextlib.contextmanager
def claimed(out_dir: Path, planned: Iterable[str]) -> Iterator[Claim]:
    """Holds ``out_dir`` for one export that will write the files named ``planned`` (and the
    manifest and log): locks it, clears a killed run's leftovers, refuses files that are not
    edgezoo's, removes edgezoo's earlier files this run will not remake, and moves the old
    manifest aside."""
    lock_path = out_dir / LOCK
    fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise BadInput(f"--out {str(out_dir)!r}: another edgezoo export is writing there now: wait for it to finish, or pass another --out") from None
    try:
        for pattern in _LEFTOVERS:
            for leftover in out_dir.glob(pattern):
                if leftover.is_dir() and not leftover.is_symlink():
                    shutil.rmtree(leftover, ignore_errors=True)
                else:
                    leftover.unlink(missing_ok=True)
        owned = owned_files(out_dir)
        planned = set(planned) | {MANIFEST, LOG}
        for name in sorted(planned):
            _refuse_if_foreign(out_dir / name, owned)
        # From here on the folder changes: the old manifest no longer describes it.
        write_text_atomic(out_dir / PREVIOUS, json.dumps({"owned": owned}, indent=1))
        (out_dir / MANIFEST).unlink(missing_ok=True)
        for name, sha in owned.items():
            path = out_dir / name
            if name not in planned and path.is_file() and not path.is_symlink() and sha256_file(path) == sha:
                path.unlink()  # an earlier run's artifact this run does not remake
        yield Claim(out_dir, owned)
    finally:
        lock_path.unlink(missing_ok=True)
        os.close(fd)


def owned_files(out_dir: Path) -> dict[str, str]:
    """name -> sha256 of every file an edgezoo manifest in ``out_dir`` lists (and the manifest of
    a run that was interrupted after moving it aside). Read leniently: any schema version."""
    owned: dict[str, str] = {}
    try:
        previous = json.loads((out_dir / PREVIOUS).read_text())
        owned.update({str(k): str(v) for k, v in previous.get("owned", {}).items()})
    except (OSError, ValueError, AttributeError):
        pass
    manifest = _edgezoo_manifest(out_dir / MANIFEST)
    if manifest is not None:
        for artifact in manifest.get("artifacts", []):
            for entry in (artifact.get("files") or []) if isinstance(artifact, dict) else []:
                if isinstance(entry, dict) and isinstance(entry.get("path"), str) and isinstance(entry.get("sha256"), str):
                    owned[entry["path"]] = entry["sha256"]
        log = manifest.get("log")
        if isinstance(log, dict) and isinstance(log.get("path"), str) and isinstance(log.get("sha256"), str):
            owned[log["path"]] = log["sha256"]
    return {name: sha for name, sha in owned.items() if Path(name).name == name}  # names, never paths out of the folder


def _edgezoo_manifest(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and isinstance(data.get("artifacts"), list) and "model" in data and "reference" in data:
        return data
    return None


def _refuse_if_foreign(path: Path, owned: dict[str, str]) -> None:
    if not (path.exists() or path.is_symlink()):
        return
    if path.name == MANIFEST and _edgezoo_manifest(path) is not None and not path.is_symlink():
        return
    if path.is_file() and not path.is_symlink() and owned.get(path.name) == sha256_file(path):
        return
    said = "changed since an edgezoo manifest there listed it" if path.name in owned else "not listed by an edgezoo manifest there"
    raise BadInput(f"--out {str(path.parent)!r} holds {path.name!r}, {said}: edgezoo would replace it; move it away or pass another --out")
