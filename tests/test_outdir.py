"""The output folder: the manifest and the files agree after any stop, two exports never mix,
and a user's own files are never edgezoo's to replace."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgezoo.fileio import sha256_file
from edgezoo.manifest import read_manifest


def _args(user_models, out, *extra):
    return ["export", "--model", f"{user_models}:TinyNet", "--input-shape", "1,3,16,16", "--out", str(out), *extra]


def _start(user_models, out, *extra) -> subprocess.Popen:
    exe = Path(sys.executable).parent / "edgezoo"
    return subprocess.Popen([str(exe), *_args(user_models, out, *extra)], cwd=out.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(predicate, seconds=300):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def _staging(out: Path) -> list[Path]:
    return list(out.glob(".edgezoo-staging-*"))


def test_a_second_export_into_the_same_folder_is_refused_while_the_first_runs(cli, user_models, tmp_path):
    out = tmp_path / "out"
    first = _start(user_models, out)
    try:
        _wait_for(lambda: _staging(out))   # the first holds the folder and is converting
        second = cli(*_args(user_models, out))
        assert second.returncode == 2 and "another edgezoo export is writing there now" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        _, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    assert read_manifest(out / "manifest.json").ok
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # lock and staging gone


@pytest.mark.parametrize("name", ["tinynet.onnx", "export.log", "manifest.json"])
def test_a_users_file_with_an_artifacts_name_is_left_alone_and_the_run_refuses(cli, user_models, tmp_path, name):
    out = tmp_path / "out"
    out.mkdir()
    (out / name).write_text("mine")
    result = cli(*_args(user_models, out))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"holds '{name}', not listed by an edgezoo manifest there" in result.stderr
    assert (out / name).read_text() == "mine"
    assert sorted(p.name for p in out.iterdir()) == [name]


def test_an_edgezoo_file_changed_since_is_not_replaced(cli, user_models, tmp_path):
    out = tmp_path / "out"
    assert cli(*_args(user_models, out, "--formats", "onnx")).returncode == 0
    (out / "tinynet.onnx").write_bytes(b"edited by hand")
    result = cli(*_args(user_models, out, "--formats", "onnx"))
    assert result.returncode == 2 and "changed since an edgezoo manifest there listed it" in result.stderr
    assert (out / "tinynet.onnx").read_bytes() == b"edited by hand"


def test_a_rerun_replaces_edgezoos_files_and_removes_those_it_no_longer_makes(cli, user_models, tmp_path):
    out = tmp_path / "out"
    assert cli(*_args(user_models, out, "--formats", "onnx,openvino", "--int8")).returncode == 0
    (out / "notes.txt").write_text("mine")
    assert cli(*_args(user_models, out, "--formats", "onnx")).returncode == 0
    manifest = read_manifest(out / "manifest.json")
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "notes.txt", "tinynet.onnx"]
    assert manifest.artifact("onnx", "fp32").sha256 == sha256_file(out / "tinynet.onnx")


def test_stale_staging_from_a_killed_run_is_removed_at_the_next_start(cli, user_models, tmp_path):
    out = tmp_path / "out"
    stale = out / ".edgezoo-staging-k1ll3d"
    stale.mkdir(parents=True)
    (stale / "graph.onnx").write_bytes(b"half")
    assert cli(*_args(user_models, out, "--formats", "onnx")).returncode == 0
    assert not stale.exists()


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_a_run_stopped_midway_leaves_no_manifest_describing_files_it_did_not_make(cli, user_models, tmp_path, how):
    out = tmp_path / "out"
    assert cli(*_args(user_models, out, "--formats", "onnx")).returncode == 0  # an earlier, complete export
    run = _start(user_models, out, "--int8")
    _wait_for(lambda: _staging(out))
    run.send_signal(how)
    run.communicate(timeout=120)
    assert run.returncode != 0
    # Whatever the earlier manifest said no longer holds, so it is gone: no manifest lies.
    assert not (out / "manifest.json").exists()
    if how != signal.SIGKILL:  # cleanup ran: no staging, no lock
        assert not _staging(out) and not (out / ".edgezoo.lock").exists()
        assert "Traceback" not in run.stderr.read() if run.stderr and not run.stderr.closed else True
    # The next run takes over: the killed run's leftovers go, the earlier files are edgezoo's.
    again = cli(*_args(user_models, out, "--formats", "onnx"))
    assert again.returncode == 0, again.stderr
    manifest = read_manifest(out / "manifest.json")
    assert sorted(p.name for p in out.iterdir()) == sorted(["manifest.json", *(a.path for a in manifest.artifacts)])
    for a in manifest.artifacts:
        assert a.sha256 == sha256_file(out / a.path)
