"""`edgezoo bench --device ssh://...` against a real OpenSSH server on a loopback port, with throwaway
keys and a host alias in an ssh config file (the user's own setup, as `ssh` reads it): the export's
bundle goes over, run.py measures there, the figures come back into bench.json, nothing is left on
the device; one run has the device's side in the aarch64 Python under QEMU."""

from __future__ import annotations

import getpass
import glob
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from edgezoo.bench_results import read_bench

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
needs_sshd = pytest.mark.skipif(not (os.path.exists(SSHD) and shutil.which("ssh") and shutil.which("ssh-keygen")),
                                reason="OpenSSH's server is not installed (.ci/run installs openssh-server with apt-get where it can)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keys_and_config(root: Path, port: int, user: str) -> Path:
    """Throwaway host and client keys, the client's in authorized_keys, and an ssh config with a
    host alias (edgezoo-device) as a user's ~/.ssh/config would have."""
    for key in ("host_key", "client_key", "stranger_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / key)], check=True)
    (root / "authorized_keys").write_text((root / "client_key.pub").read_text())
    (root / "authorized_keys").chmod(stat.S_IRUSR | stat.S_IWUSR)
    config = root / "ssh_config"
    config.write_text(f"Host edgezoo-device\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n\n"
                      f"Host *\n  IdentityFile {root}/client_key\n  IdentitiesOnly yes\n  UserKnownHostsFile {root}/known_hosts\n"
                      "  StrictHostKeyChecking accept-new\n  LogLevel ERROR\n")
    return config


def _wait_for(port: int) -> bool:
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    """OpenSSH's sshd on a loopback port (skipped where it is not installed: asyncssh's server
    below stands in for the one test that needs no more than exec)."""
    root = tmp_path_factory.mktemp("sshd")
    port, user = _free_port(), getpass.getuser()
    config = _keys_and_config(root, port, user)
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", exist_ok=True)  # the privilege-separation folder sshd wants when started as root
    (root / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {root}/host_key\nAuthorizedKeysFile {root}/authorized_keys\nPidFile {root}/sshd.pid\n"
        "StrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
        "PermitRootLogin prohibit-password\nLogLevel ERROR\n")
    server = subprocess.Popen([SSHD, "-D", "-e", "-f", str(root / "sshd_config")], stderr=open(root / "sshd.log", "w"))
    if not _wait_for(port):
        server.kill()
        pytest.fail(f"sshd did not start: {(root / 'sshd.log').read_text()}")
    yield SimpleNamespace(root=root, port=port, user=user, config=config)
    server.terminate()
    server.wait(timeout=10)


def _leftovers() -> set[str]:
    return set(glob.glob(os.path.join(os.environ.get("TMPDIR", "/tmp"), "edgezoo-bench.*"))) | set(glob.glob("/tmp/edgezoo-bench.*"))


@needs_sshd
def test_bench_over_ssh_on_two_devices_in_parallel(cli, zoo_export, sshd, tmp_path, monkeypatch):
    spec, result = zoo_export("cnn")
    monkeypatch.setenv("EDGEZOO_SSH_CONFIG", str(sshd.config))
    before = _leftovers()
    devices = f"ssh://edgezoo-device,ssh://{sshd.user}@127.0.0.1:{sshd.port}"
    run = cli("bench", result.out_dir, "--device", devices, "--threads", "1", "--remote-runs", "5", "--remote-python", sys.executable,
              "--out", tmp_path / "b", "--no-plots")
    assert run.returncode == 0, run.stdout + run.stderr
    report = read_bench(tmp_path / "b" / "bench.json")
    files = {(a.format, a.precision) for a in result.manifest.artifacts if a.format in ("onnx", "tflite") and a.ok}
    for device in devices.split(","):
        rows = [r for r in report.rows if r.device == device]
        assert {(r.format, r.precision) for r in rows} == files, device
        for r in rows:
            assert r.ok and r.latency.runs == 5 and 0 < r.latency.p50_ms <= r.latency.p99_ms and r.load_s > 0
            assert r.detail["device"]["machine"] == "x86_64" and r.detail["versions"]["numpy"] and r.detail["peak_rss_mb"] > 0
            assert r.sha256 == result.manifest.artifact(r.format, r.precision).sha256
    assert _leftovers() == before  # the device's temporary folders are gone


@needs_sshd
def test_device_rows_join_the_hosts_in_one_report(cli, zoo_export, sshd, tmp_path, monkeypatch):
    """One run, this host and a device: one bench.json, bench.md and plot set holding both, each row
    naming where it ran."""
    spec, result = zoo_export("cnn")
    monkeypatch.setenv("EDGEZOO_SSH_CONFIG", str(sshd.config))
    run = cli("bench", result.out_dir, "--device", "cpu,ssh://edgezoo-device", "--threads", "1", "--runtimes", "litert", "--rounds", "1",
              "--seconds", "0.2", "--remote-runs", "3", "--remote-python", sys.executable, "--out", tmp_path / "b")
    assert run.returncode == 0, run.stdout + run.stderr
    rows = read_bench(tmp_path / "b" / "bench.json").rows
    assert {r.device for r in rows} == {"cpu", "ssh://edgezoo-device"} and all(r.ok for r in rows)
    assert "ssh://edgezoo-device" in (tmp_path / "b" / "bench.md").read_text()
    assert list((tmp_path / "b").glob("*.png"))


@needs_sshd
def test_a_file_edgezoo_did_not_make_goes_over_with_run_py(cli, zoo_export, sshd, tmp_path, monkeypatch):
    spec, result = zoo_export("cnn")
    loose = tmp_path / "theirs.tflite"
    shutil.copyfile(result.out_dir / "cnn_int8.tflite", loose)
    monkeypatch.setenv("EDGEZOO_SSH_CONFIG", str(sshd.config))
    run = cli("bench", loose, "--device", "ssh://edgezoo-device", "--threads", "1", "--remote-runs", "3", "--remote-python", sys.executable,
              "--out", tmp_path / "b", "--no-plots")
    assert run.returncode == 0, run.stdout + run.stderr
    [row] = read_bench(tmp_path / "b" / "bench.json").rows
    assert row.ok and row.label == "theirs" and row.runtime == "litert" and row.latency.runs == 3 and row.detail["device"]["machine"]


@needs_sshd
def test_ssh_failures_are_one_line_and_keep_nothing_half_done(cli, zoo_export, sshd, tmp_path, monkeypatch):
    spec, result = zoo_export("cnn")
    monkeypatch.setenv("EDGEZOO_SSH_CONFIG", str(sshd.config))

    def bench(device: str, *more: str):
        return cli("bench", result.out_dir, "--device", device, "--threads", "1", "--remote-runs", "3", "--out", tmp_path / "b", "--no-plots", *more)

    def reason(run) -> str:
        rows = [r for r in read_bench(tmp_path / "b" / "bench.json").rows if r.status == "failed"]
        assert run.returncode == 1 and len(rows) == 1 and "Traceback" not in run.stderr, run.stdout + run.stderr
        return rows[0].error

    assert "unreachable" in reason(bench(f"ssh://127.0.0.1:{_free_port()}", "--remote-python", sys.executable))
    stranger = tmp_path / "stranger_config"
    stranger.write_text(sshd.config.read_text().replace("client_key", "stranger_key"))
    monkeypatch.setenv("EDGEZOO_SSH_CONFIG", str(stranger))
    assert "refused the login" in reason(bench("ssh://edgezoo-device", "--remote-python", sys.executable))
    monkeypatch.setenv("EDGEZOO_SSH_CONFIG", str(sshd.config))
    # A device whose Python has no numpy (the system's own python3 here, outside the venv): the pip line.
    bare = shutil.which("python3", path="/usr/bin:/bin")
    if bare and subprocess.run([bare, "-c", "import numpy"], capture_output=True).returncode != 0:
        assert "pip install numpy" in reason(bench("ssh://edgezoo-device", "--remote-python", bare))
    assert "no /nonexistent/python3 there" in reason(bench("ssh://edgezoo-device", "--remote-python", "/nonexistent/python3"))
    # A run that hangs: a "Python" that never answers, stopped by --timeout.
    hang = tmp_path / "hang.sh"
    hang.write_text("#!/bin/sh\nsleep 60\n")
    hang.chmod(0o755)
    assert "did not finish in 3 s" in reason(bench("ssh://edgezoo-device", "--remote-python", str(hang), "--timeout", "3"))
    run = cli("bench", result.out_dir, "--device", "ssh://bad host")
    assert run.returncode == 2 and "ssh://[user@]host[:port]" in run.stderr


@needs_sshd
def test_a_device_that_goes_away_halfway_keeps_what_it_measured(cli, zoo_export, sshd, tmp_path, monkeypatch):
    """The device's side runs at 1 thread, then its ssh session dies (killed) before the 2-thread
    run: the 1-thread rows stay in bench.json, beside one failed row saying the connection dropped."""
    spec, result = zoo_export("cnn")
    monkeypatch.setenv("EDGEZOO_SSH_CONFIG", str(sshd.config))
    mark = tmp_path / "ran-once"
    flaky = tmp_path / "flaky-python"
    flaky.write_text(f"#!/bin/sh\nif [ -e {mark} ]; then kill -9 $PPID; sleep 30; fi\ntouch {mark}\nexec {sys.executable} \"$@\"\n")
    flaky.chmod(0o755)
    run = cli("bench", result.out_dir, "--device", "ssh://edgezoo-device", "--threads", "1,2", "--remote-runs", "3", "--remote-python", str(flaky),
              "--out", tmp_path / "b", "--no-plots")
    assert run.returncode == 1, run.stdout + run.stderr
    rows = read_bench(tmp_path / "b" / "bench.json").rows
    kept = [r for r in rows if r.ok]
    assert kept and {r.threads for r in kept} == {1}
    [failed] = [r for r in rows if r.status == "failed"]
    assert "dropped" in failed.error or "closed" in failed.error, failed.error


@needs_sshd
def test_bench_over_ssh_with_the_device_side_on_emulated_arm64(cli, zoo_export, sshd, tmp_path, monkeypatch):
    """The remote Python is the aarch64 one `edgezoo verify` sets up, run under QEMU as a Cortex-A76:
    an aarch64 device end to end (its latency is emulated time, and the row says which machine ran)."""
    if not (shutil.which("qemu-aarch64-static") or shutil.which("qemu-aarch64")):
        pytest.skip("qemu-user-static is not installed")
    from edgezoo.devices.arm64 import guest

    spec, result = zoo_export("cnn")
    g = guest()
    wrapper = tmp_path / "aarch64-python"
    env = " ".join(f"{k}={v}" for k, v in g.env().items())
    wrapper.write_text("#!/bin/sh\nexec env -i " + env + " " + " ".join(g.command("cortex-a76")) + ' "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("EDGEZOO_SSH_CONFIG", str(sshd.config))
    run = cli("bench", result.out_dir, "--device", "ssh://edgezoo-device", "--threads", "1", "--remote-runs", "2", "--remote-python", str(wrapper),
              "--out", tmp_path / "b", "--no-plots", "--runtimes", "litert")
    assert run.returncode == 0, run.stdout + run.stderr
    rows = read_bench(tmp_path / "b" / "bench.json").rows
    assert {(r.format, r.precision) for r in rows} == {("tflite", "fp32"), ("tflite", "int8")}
    assert all(r.ok and r.detail["device"]["machine"] == "aarch64" and r.detail["versions"]["ai-edge-litert"] for r in rows)


@pytest.mark.skipif(not shutil.which("ssh"), reason="no OpenSSH client")
def test_bench_over_ssh_against_asyncssh_server(cli, zoo_export, tmp_path, monkeypatch):
    """Where OpenSSH's server cannot be installed the tests need another real one: asyncssh's,
    over a real TCP connection from the same ssh client, the same bundle and run.py."""
    pytest.importorskip("asyncssh")
    monkeypatch.syspath_prepend(str(Path(__file__).parent / "fixtures"))
    from ssh_server import AsyncsshServer

    spec, result = zoo_export("cnn")
    port = _free_port()
    config = _keys_and_config(tmp_path, port, getpass.getuser())
    server = AsyncsshServer(port, tmp_path / "host_key", tmp_path / "authorized_keys")
    try:
        monkeypatch.setenv("EDGEZOO_SSH_CONFIG", str(config))
        before = _leftovers()
        run = cli("bench", result.out_dir, "--device", "ssh://edgezoo-device", "--threads", "1", "--remote-runs", "3",
                  "--remote-python", sys.executable, "--runtimes", "litert", "--out", tmp_path / "b", "--no-plots")
        assert run.returncode == 0, run.stdout + run.stderr
        rows = read_bench(tmp_path / "b" / "bench.json").rows
        assert {(r.format, r.precision) for r in rows} == {("tflite", "fp32"), ("tflite", "int8")} and all(r.ok for r in rows)
        assert _leftovers() == before
    finally:
        server.close()
