"""`edgezoo verify --arch arm64`: the real aarch64 builds of onnxruntime and ai-edge-litert, run under
user-mode QEMU as real Arm cores, give this host's outputs; what fails says why in its row."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from edgezoo.verify_results import SCHEMA_PATH, read_verify

needs_qemu = pytest.mark.skipif(not (shutil.which("qemu-aarch64-static") or shutil.which("qemu-aarch64")),
                                reason="qemu-user-static is not installed (.ci/run installs it with apt-get where it can)")


@needs_qemu
def test_every_onnx_and_tflite_file_gives_this_hosts_outputs(cli, zoo_export, tmp_path):
    spec, result = zoo_export("mlp")
    out = tmp_path / "verified"
    # The suite runs one core here (Cortex-A76: the int8 dot-product kernels) and another below;
    # benchmarks/arm64.py runs every zoo model on both default cores.
    run = cli("verify", result.out_dir, "--cpu", "cortex-a76", "--out", out)
    assert run.returncode == 0, run.stdout + run.stderr
    report = read_verify(out / "verify.json")
    jsonschema.validate(json.loads((out / "verify.json").read_text()), json.loads(SCHEMA_PATH.read_text()))

    files = {(a.format, a.precision) for a in result.manifest.artifacts if a.format in ("onnx", "tflite")}
    assert {(r.format, r.precision, r.core) for r in report.rows} == {(f, p, "cortex-a76") for f, p in files}
    assert report.guest_versions["onnxruntime"] and report.guest_versions["ai-edge-litert"]
    for row in report.rows:
        assert row.ok, (row.label, row.core, row.error)
        assert row.samples == 3 and row.inputs == ["1x13 float32"]
        if row.precision == "int8":
            assert row.max_units is not None and row.max_units <= 1  # quantized outputs: judged in steps
        else:
            assert row.max_rel_diff is not None and row.max_rel_diff <= 1e-4
    assert "emulated" in (out / "verify.md").read_text().lower()

    shown = cli("report", out)
    assert shown.returncode == 0 and "cortex-a76" in shown.stdout


@needs_qemu
def test_integer_inputs_come_from_the_declared_range_and_a_file_no_runtime_loads_fails_its_row(cli, zoo_export, tmp_path):
    """word2vec takes two int64 word ids: seeded ids within the vocabulary, on another core; a
    broken .tflite given beside it fails its own row, naming why, and the others still run."""
    spec, result = zoo_export("word2vec")
    bad = tmp_path / "broken.tflite"
    bad.write_bytes(b"not a flatbuffer" * 8)
    run = cli("verify", result.out_dir, bad, "--cpu", "cortex-a53", "--samples", "2", "--out", tmp_path / "v")
    assert run.returncode == 1, run.stdout + run.stderr
    report = read_verify(tmp_path / "v" / "verify.json")
    broken = [r for r in report.rows if r.path == str(bad)]
    assert len(broken) == 1 and broken[0].status == "failed" and "does not run on this host either" in broken[0].error
    rest = [r for r in report.rows if r.path != str(bad)]
    assert rest and all(r.ok and r.core == "cortex-a53" for r in rest), [(r.label, r.error) for r in rest]
    assert all(r.inputs == ["1 int64", "1 int64"] for r in rest)


def test_the_default_cores_are_a_raspberry_pi_4s_and_a_pi_5s():
    from edgezoo.devices.arm64 import CORES, DEFAULT_CORES

    assert DEFAULT_CORES == ("cortex-a72", "cortex-a76")
    assert "Raspberry Pi 4" in CORES["cortex-a72"].found_in and "Raspberry Pi 5" in CORES["cortex-a76"].found_in
    assert "asimddp" in CORES["cortex-a76"].features and "asimddp" not in CORES["cortex-a72"].features


def test_the_comparison_holds_floats_to_1e4_relative_and_quantized_outputs_to_one_step():
    from edgezoo.verify import _compare
    from edgezoo.verify_results import VerifyRow

    def judge(x86, arm, unit):
        row = VerifyRow("m", "onnx", "int8", "onnxruntime", "cortex-a72", "failed")
        _compare(row, {"s0_o0": np.array(x86, np.float32)}, {"s0_o0": np.array(arm, np.float32)}, [unit])
        return row

    assert judge([1.0, 2.0], [1.0, 2.0001], None).ok                     # 5e-5 relative
    assert judge([1.0, 2.0], [1.0, 2.001], None).status == "mismatch"     # 5e-4 relative
    assert judge([0.5, 1.0], [0.5, 1.25], 0.25).ok                        # one step
    assert judge([0.5, 1.0], [0.5, 1.5], 0.25).status == "mismatch"       # two steps
    assert judge([np.nan, 1.0], [np.nan, 1.0], None).ok                   # the same NaN on both sides
    assert judge([0.0, 1.0], [np.nan, 1.0], None).status == "mismatch"    # a NaN only one side has
    mixed = VerifyRow("m", "onnx", "int8", "onnxruntime", "cortex-a72", "failed")
    _compare(mixed, {"s0_o0": np.float32([0.5]), "s0_o1": np.float32([2.0])}, {"s0_o0": np.float32([0.75]), "s0_o1": np.float32([2.0])}, [0.25, None])
    assert mixed.ok and mixed.bound == "1 quantization step and 0.0001 relative" and mixed.max_units == 1 and mixed.max_rel_diff == 0
    reshaped = VerifyRow("m", "onnx", "fp32", "onnxruntime", "cortex-a72", "failed")
    _compare(reshaped, {"s0_o0": np.zeros((1, 2), np.float32)}, {"s0_o0": np.zeros((2, 1), np.float32)}, [None])
    assert reshaped.status == "mismatch" and reshaped.error == "output s0_o0: shape (2, 1) on arm64, (1, 2) here"


def test_a_process_that_dies_fails_the_file_it_was_on_and_the_rest_run_in_a_new_one(tmp_path):
    """The job runner on real processes: a script that dies of SIGSEGV on one item, and one that hangs."""
    from edgezoo.verify import run_job

    script = tmp_path / "flaky.py"
    script.write_text(
        "import json, os, signal, sys, time\n"
        "job = json.load(open(sys.argv[2]))\n"
        "print(json.dumps({'started': True}), flush=True)\n"
        "for item in job['items']:\n"
        "    if item['path'] == 'segv': os.kill(os.getpid(), signal.SIGSEGV)\n"
        "    if item['path'] == 'hang': time.sleep(60)\n"
        "    print('chatter from a runtime', flush=True)\n"
        "    print(json.dumps({'id': item['id'], 'status': 'ok'}), flush=True)\n")
    items = [{"id": f"f{i}", "path": p, "out": str(tmp_path / f"f{i}.npz")} for i, p in enumerate(["a", "segv", "b", "hang", "c"])]
    results, header = run_job([sys.executable, str(script)], {}, items, tmp_path / "job", timeout=3, advance=lambda *a: None)
    assert header == {"started": True}
    assert [results[f"f{i}"]["status"] for i in range(5)] == ["ok", "failed", "ok", "failed", "ok"]
    assert "SIGSEGV" in results["f1"]["error"]
    assert "did not finish in 3 s" in results["f3"]["error"]


@pytest.mark.parametrize("args,needles", [
    (["--cpu", "max"], ["'max'", "wrong int8 results", "cortex-a72"]),
    (["--cpu", "cortex-a75"], ["did you mean cortex-a7"]),
    (["--arch", "riscv64"], ["--arch 'riscv64'", "arm64"]),
    (["--samples", "0"], ["--samples 0"]),
])
def test_bad_verify_input_is_one_line(cli, tmp_path, args, needles):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    run = cli("verify", model, *args)
    assert run.returncode == 2, run.stdout + run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr
    for needle in needles:
        assert needle in run.stderr


def test_only_openvino_files_is_nothing_to_verify(cli, tmp_path):
    (tmp_path / "m.xml").write_text("<net/>")
    run = cli("verify", tmp_path / "m.xml")
    assert run.returncode == 2 and "nothing to verify" in run.stderr


def test_without_qemu_one_line_says_how_to_install_it(cli, tmp_path, monkeypatch):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    run = cli("verify", model)
    assert run.returncode == 2
    assert "qemu-aarch64-static is not installed" in run.stderr and "apt-get install qemu-user-static" in run.stderr


def test_the_shipped_verify_schema_is_the_one_the_types_make():
    from edgezoo.verify_results import render_schema

    assert SCHEMA_PATH.read_text() == render_schema(), "regenerate edgezoo/verify.schema.json from edgezoo/verify_results.py"


def test_a_verify_json_of_another_version_is_refused_in_one_line(tmp_path):
    from edgezoo.errors import BadInput

    path = tmp_path / "verify.json"
    path.write_text(json.dumps({"schema_version": 99}))
    with pytest.raises(BadInput, match="schema version 99"):
        read_verify(path)
    assert Path(SCHEMA_PATH).is_file()
