"""`edgezoo bench EXPORT_DIR --device ssh://[user@]host[:port]`: the export's rpi bundle measured on a
device over ssh.

The user's own OpenSSH client runs every step (`ssh`, so keys, the agent and ``~/.ssh/config`` host
aliases work as they do in a terminal; ``EDGEZOO_SSH_CONFIG`` names another config file), with
BatchMode on (a prompt would hang): a temporary folder on the device, the bundle streamed into it
as a tar, `run.py bench` there under a timeout, its JSON back, and the folder removed whatever
happened. What fails is one line: an unreachable host, a refused key, a device without Python,
numpy or the runtime (with the pip line), a run that hangs, a device that goes away.
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import BadInput, EdgezooError, one_line

CONNECT_TIMEOUT_S = 10


class DeviceError(EdgezooError):
    """The device could not be reached or could not run the bundle: one line, the figures already
    measured kept."""


@dataclass(frozen=True)
class SshDevice:
    spec: str                 # as given: ssh://user@host:port
    destination: str          # user@host, or a ~/.ssh/config alias
    port: int | None

    def ssh(self, *remote: str) -> list[str]:
        cmd = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={CONNECT_TIMEOUT_S}", "-o", "ServerAliveInterval=5",
               "-o", "ServerAliveCountMax=3"]
        config = os.environ.get("EDGEZOO_SSH_CONFIG")
        if config:
            cmd += ["-F", config]
        if self.port is not None:
            cmd += ["-p", str(self.port)]
        return [*cmd, "--", self.destination, *remote]


def parse(device: str) -> SshDevice:
    m = re.fullmatch(r"ssh://(?:([A-Za-z0-9._-]+)@)?([A-Za-z0-9._-]+|\[[0-9A-Fa-f:]+\])(?::(\d{1,5}))?/?", device)
    if not m or (m.group(3) and not 0 < int(m.group(3)) < 65536):
        raise BadInput(f"--device {device!r}: pass ssh://[user@]host[:port] (host: a name, an address or a ~/.ssh/config alias)")
    user, host, port = m.groups()
    return SshDevice(device, f"{user}@{host}" if user else host, int(port) if port else None)


def _run(cmd: list[str], device: SshDevice, what: str, timeout: float, data: bytes | None = None) -> subprocess.CompletedProcess:
    try:
        done = subprocess.run(cmd, input=data, capture_output=True, timeout=timeout, stdin=None if data is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise DeviceError(f"{device.spec}: {what} did not finish in {timeout:g} s (stopped): the device hangs or is too slow; "
                          "pass a larger --timeout") from None
    except FileNotFoundError:
        raise DeviceError("no ssh client on this host: install OpenSSH's client (apt-get install openssh-client)") from None
    if done.returncode == 255:  # ssh's own failure, not the remote command's
        raise DeviceError(f"{device.spec}: {_ssh_reason(done.stderr.decode(errors='replace'))}")
    return done


def _ssh_reason(stderr: str) -> str:
    text = one_line(stderr.strip().splitlines()[-1] if stderr.strip() else "ssh exited 255")
    if "Permission denied" in stderr:
        return f"the device refused the login ({text}): check the user and that your key is in its authorized_keys (ssh-copy-id)"
    if "Connection refused" in stderr or "No route to host" in stderr or "timed out" in stderr or "Could not resolve" in stderr:
        return f"unreachable ({text}): check the host, the port and that sshd runs there"
    if "Host key verification failed" in stderr:
        return f"its host key is not known or has changed ({text}): connect once with ssh to check and accept it"
    if "closed by remote host" in stderr or "Broken pipe" in stderr or "Connection reset" in stderr:
        return f"the connection dropped during the run ({text})"
    return text


def bench_on(device: SshDevice, bundle: Path, runs: int, threads: list[int], timeout: float, python: str = "python3",
             rows: list[dict] | None = None) -> list[dict]:
    """``run.py bench`` of every file in ``bundle`` on ``device``, once per thread count: the rows
    run.py printed, each with the device's description under "device" and "versions", appended to
    ``rows`` as they come (a failure later keeps them)."""
    rows = [] if rows is None else rows
    made = _run(device.ssh("mktemp -d \"${TMPDIR:-/tmp}/edgezoo-bench.XXXXXX\""), device, "making a temporary folder", timeout)
    remote = made.stdout.decode().strip()
    if made.returncode != 0 or not remote.startswith("/"):
        raise DeviceError(f"{device.spec}: cannot make a temporary folder there ({one_line(made.stderr.decode(errors='replace'))})")
    try:
        _run(device.ssh(f"tar -xf - -C {shlex.quote(remote)}"), device, "copying the bundle", timeout, data=_tar(bundle))
        for t in threads:
            cmd = f"cd {shlex.quote(remote)} && exec {shlex.quote(python)} run.py bench {int(runs)} --threads {int(t)}"
            done = _run(device.ssh(cmd), device, f"run.py bench at {t} threads", timeout)
            err = done.stderr.decode(errors="replace").strip()
            try:
                said = json.loads(done.stdout)
            except ValueError:
                if done.returncode == 127 or "not found" in err:
                    raise DeviceError(f"{device.spec}: no {python} there ({one_line(err)}): install Python 3 with numpy and a runtime, "
                                      "or pass --remote-python") from None
                if "No module named 'numpy'" in err:
                    raise DeviceError(f"{device.spec}: {python} there has no numpy: pip install numpy ai-edge-litert (or onnxruntime)") from None
                last = err.splitlines()[-1] if err else f"exit {done.returncode}"
                raise DeviceError(f"{device.spec}: run.py bench failed there ({one_line(last.removeprefix('error: '))})") from None
            for row in said["results"]:
                rows.append({**row, "device": said["device"], "versions": said["versions"]})
        return rows
    finally:
        try:
            subprocess.run(device.ssh(f"rm -rf {shlex.quote(remote)}"), capture_output=True, timeout=CONNECT_TIMEOUT_S * 3, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            pass


def _tar(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in sorted(folder.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(folder)), recursive=False)
    return buffer.getvalue()
