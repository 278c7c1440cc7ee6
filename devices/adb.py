"""`edgezoo bench PATH --device adb[:SERIAL]`: each .tflite file timed on an Android device by LiteRT's
own `benchmark_model` (the user's binary, pushed with ``--benchmark-binary``, or one already at
/data/local/tmp/benchmark_model), through the host's `adb`, each run under a timeout, its output
parsed, what was pushed removed. No adb, no device, no binary, a hung run, a device that goes away:
one line each, the rows already measured kept.
"""

from __future__ import annotations

import re
import secrets
import shlex
import shutil
import subprocess
from pathlib import Path

from ..errors import BadInput, one_line
from .remote import DeviceError

DEVICE_BINARY = "/data/local/tmp/benchmark_model"
_NUMBER = r"([0-9][0-9.]*(?:e[+-]?[0-9]+)?)"
_LOG_PREFIX = re.compile(r"^(?:[A-Z] [A-Za-z_]+\s*: |[A-Z]/[A-Za-z_]+\(\s*\d+\): |INFO: |WARNING: )")


def parse_device(device: str) -> str | None:
    """``adb`` -> None (the one device attached); ``adb:SERIAL`` -> SERIAL."""
    if device == "adb":
        return None
    m = re.fullmatch(r"adb:([A-Za-z0-9._:-]+)", device)
    if not m:
        raise BadInput(f"--device {device!r}: pass adb (the one device attached) or adb:SERIAL (from adb devices)")
    return m.group(1)


def parse_benchmark_output(text: str) -> dict:
    """What `benchmark_model` printed: the summary line (Init, First inference, Warmup and Inference
    averages, in microseconds), the timed runs' count line (count, min, max, avg, std, and the
    percentiles newer versions add) and the memory footprint, from plain or logcat-prefixed output.
    Raises ValueError, with the tool's own last words, where no timings were printed."""
    lines = [_LOG_PREFIX.sub("", line.strip()) for line in text.replace("\r", "").splitlines()]
    found: dict = {}
    counts = []
    for line in lines:
        m = re.search(rf"Inference timings in us: Init: {_NUMBER}, First inference: {_NUMBER}, Warmup \(avg\): {_NUMBER}, "
                      rf"Inference \(avg\): {_NUMBER}", line)
        if m:
            found.update(init_us=float(m.group(1)), first_us=float(m.group(2)), warmup_avg_us=float(m.group(3)), avg_us=float(m.group(4)))
        if line.startswith("count="):
            counts.append(dict((k, float(v)) for k, v in re.findall(rf"([a-z0-9]+)={_NUMBER}", line)))
        m = re.search(rf"(?:Peak memory footprint|Memory footprint delta from the start of the tool) \(MB\): init={_NUMBER} overall={_NUMBER}", line)
        if m:
            found.update(memory_init_mb=float(m.group(1)), memory_overall_mb=float(m.group(2)))
        m = re.search(rf"Overall peak memory footprint \(MB\) via periodic monitoring: {_NUMBER}", line)
        if m:
            found["peak_memory_mb"] = float(m.group(1))
    if "avg_us" not in found:
        last = [line for line in lines if line][-3:]
        raise ValueError("benchmark_model printed no timings" + (f": {' / '.join(last)}" if last else ""))
    if counts:
        timed = counts[-1]  # the warm-up's count line comes first, the timed runs' last
        found["runs"] = int(timed.get("count", 0))
        for key in ("min", "max", "std", "p5", "median", "p95"):
            if key in timed:
                found[f"{key}_us"] = timed[key]
    return found


class Adb:
    def __init__(self, serial: str | None, timeout: float):
        self.exe = shutil.which("adb")
        if self.exe is None:
            raise DeviceError("no adb on this host: install Android's platform tools (apt-get install adb, or the SDK's platform-tools)")
        self.timeout = timeout
        attached = self._attached()
        if serial is None:
            if not attached:
                raise DeviceError("no Android device attached (adb devices lists none): connect one with USB debugging on, or adb connect HOST")
            if len(attached) > 1:
                raise DeviceError(f"{len(attached)} Android devices attached ({', '.join(attached)}): pass --device adb:SERIAL")
            serial = attached[0]
        elif serial not in attached:
            raise DeviceError(f"no Android device {serial!r} attached (adb devices lists {', '.join(attached) or 'none'})")
        self.serial = serial

    def _attached(self) -> list[str]:
        done = self._run([self.exe, "devices"], "adb devices")
        return [line.split()[0] for line in done.stdout.splitlines()[1:] if line.strip().endswith("device")]

    def _run(self, cmd: list[str], what: str, timeout: float | None = None) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout or self.timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise DeviceError(f"adb: {what} did not finish in {timeout or self.timeout:g} s (stopped): pass a larger --timeout") from None

    def __call__(self, *args: str, what: str) -> subprocess.CompletedProcess:
        done = self._run([self.exe, "-s", self.serial, *args], what)
        if done.returncode != 0 and ("not found" in done.stderr and "device" in done.stderr or "offline" in done.stderr):
            raise DeviceError(f"adb:{self.serial} went away during {what} ({one_line(done.stderr)})")
        return done

    def shell(self, command: str, what: str) -> subprocess.CompletedProcess:
        return self(*["shell", command], what=what)


def bench_on(device: str, files: list[Path], threads: list[int], runs: int, timeout: float, binary: str | None = None,
             rows: list[dict] | None = None) -> list[dict]:
    """benchmark_model on each file at each thread count: rows with the parsed timings, appended to
    ``rows`` as they come."""
    rows = [] if rows is None else rows
    adb = Adb(parse_device(device), timeout)
    remote = f"/data/local/tmp/edgezoo-{secrets.token_hex(4)}"
    adb.shell(f"mkdir -p {remote}", "making a folder")
    try:
        if binary is not None:
            if not Path(binary).is_file():
                raise DeviceError(f"--benchmark-binary {binary!r} is not a file: pass TFLite's benchmark_model built for the device")
            tool = f"{remote}/benchmark_model"
            if adb("push", binary, tool, what="pushing benchmark_model").returncode != 0:
                raise DeviceError(f"adb:{adb.serial}: pushing {binary} failed")
            adb.shell(f"chmod 755 {tool}", "chmod")
        else:
            tool = DEVICE_BINARY
            if adb.shell(f"test -x {tool} && echo yes", "looking for benchmark_model").stdout.strip() != "yes":
                raise DeviceError(f"adb:{adb.serial} has no {tool}: pass --benchmark-binary PATH (LiteRT's benchmark_model for android_arm64)")
        abi = adb.shell("getprop ro.product.cpu.abi", "reading the device's ABI").stdout.strip()
        model_name = adb.shell("getprop ro.product.model", "reading the device's model").stdout.strip()
        for f in files:
            target = f"{remote}/{f.name}"
            if adb("push", str(f), target, what=f"pushing {f.name}").returncode != 0:
                raise DeviceError(f"adb:{adb.serial}: pushing {f.name} failed")
            for t in threads:
                cmd = f"{tool} --graph={shlex.quote(target)} --num_threads={int(t)} --num_runs={int(runs)} --warmup_runs=5"
                done = adb.shell(cmd, f"benchmark_model on {f.name}")
                row = {"file": f.name, "threads": t, "device": {"serial": adb.serial, "model": model_name, "abi": abi}}
                try:
                    row.update(status="ok", **parse_benchmark_output(done.stdout + "\n" + done.stderr))
                except ValueError as exc:
                    row.update(status="failed", error=str(exc))
                rows.append(row)
        return rows
    finally:
        try:
            adb.shell(f"rm -rf {remote}", "cleaning up")
        except DeviceError:
            pass
