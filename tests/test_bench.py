"""`edgezoo bench` and `edgezoo report`: every artifact x runtime measured in its own process,
interleaved; bench.json typed like the manifest; a file edgezoo did not make; bad input."""

from __future__ import annotations

import json

import jsonschema
import pytest
import torch
from torch import nn

from edgezoo.bench_results import SCHEMA_PATH, read_bench
from edgezoo.manifest import read_manifest

FAST = ("--rounds", "3", "--seconds", "0.3")


@pytest.fixture(scope="module")
def mlp_export(zoo_export):
    """The MLP's small variant exported with int8 (the session's, shared with the matrix): a model
    edgezoo knows, so torch eager gets a row too."""
    return zoo_export("mlp")[1].out_dir


def test_bench_measures_every_artifact_in_every_runtime_that_can_run_it(cli, mlp_export):
    result = cli("bench", mlp_export, "--threads", "1,2", *FAST)
    assert result.returncode == 0, result.stdout + result.stderr
    report = read_bench(mlp_export / "bench.json")
    jsonschema.validate(json.loads((mlp_export / "bench.json").read_text()), json.loads(SCHEMA_PATH.read_text()))
    manifest = read_manifest(mlp_export / "manifest.json")

    expected = {("torch fp32", "torch")}
    for a in manifest.artifacts:
        runtimes = {"onnx": ("onnxruntime", "openvino"), "openvino": ("openvino",), "tflite": ("litert", "litert-ref")}[a.format]
        expected |= {(f"{a.format} {a.precision}", r) for r in runtimes}
    assert {(r.label, r.runtime) for r in report.rows if r.threads == 1} == expected
    assert {(r.label, r.runtime) for r in report.rows if r.threads == 2} == expected
    for row in report.rows:
        assert row.ok, row.error
        lat = row.latency
        assert 0 < lat.p50_ms <= lat.p90_ms <= lat.p99_ms
        assert lat.runs >= 3 * 2 and len(lat.round_p50_ms) == 3   # every round ran a burst of at least two calls
        assert row.load_s > 0 and row.first_call_ms > 0 and row.peak_rss_growth_bytes >= 0
        assert row.batch == 1 and row.throughput_per_s == pytest.approx(1e3 / lat.mean_ms)
        assert row.inputs == ["1x13 float32"] and row.precision_ran
        if row.runtime != "torch":
            artifact = manifest.artifact(*row.label.split())
            assert (row.sha256, row.metric) == (artifact.sha256, artifact.metric)  # the manifest's own file and its checked metric
            assert row.vs_torch is not None and row.vs_torch.low <= row.vs_torch.median <= row.vs_torch.high
        if row.precision == "int8":
            assert row.vs_fp32.against == f"{row.format} fp32 · " + {"onnxruntime": "ONNX Runtime", "openvino": "OpenVINO",
                                                                     "litert": "LiteRT + XNNPACK", "litert-ref": "LiteRT, no delegate"}[row.runtime]
    delegates = {r.runtime: r.detail.get("delegate") for r in report.rows if r.runtime.startswith("litert")}
    assert delegates == {"litert": "XNNPACK", "litert-ref": "none (builtin kernels)"}
    assert any(r.on_pareto_front for r in report.rows)
    md = (mlp_export / "bench.md").read_text()
    assert md.count("\n| ") == len(report.rows) + 1 and "ONNX Runtime" in md
    for png in ("bench-latency-vs-metric.png", "bench-latency-vs-threads.png"):
        assert (mlp_export / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    shown = cli("report", mlp_export)
    assert shown.returncode == 0, shown.stderr
    assert "torch eager" in shown.stdout and "LiteRT, no delegate" in shown.stdout and "mlp" in shown.stdout


class Dynamic(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        return self.fc(x).relu()


def _foreign_onnx(path, dynamic: bool):
    """An ONNX file made outside edgezoo, with no manifest beside it."""
    torch.onnx.export(Dynamic().eval(), (torch.zeros(2, 6),), str(path), input_names=["features"], dynamo=False,
                      dynamic_axes={"features": {0: "batch"}} if dynamic else None)
    return path


def test_a_file_edgezoo_did_not_make_is_measured_from_its_declared_inputs(cli, tmp_path):
    model = _foreign_onnx(tmp_path / "theirs.onnx", dynamic=True)
    unresolved = cli("bench", model, "--threads", "1", *FAST, "--out", tmp_path / "b1")
    assert unresolved.returncode == 1
    rows = read_bench(tmp_path / "b1" / "bench.json").rows
    assert all(r.status == "failed" and "dynamic shape" in r.error and "--input-shape" in r.error for r in rows)

    result = cli("bench", model, "--threads", "1", *FAST, "--input-shape", "4,6", "--out", tmp_path / "b2")
    assert result.returncode == 0, result.stdout + result.stderr
    rows = read_bench(tmp_path / "b2" / "bench.json").rows
    assert {r.runtime for r in rows} == {"onnxruntime", "openvino"}
    assert all(r.ok and r.inputs == ["4x6 float32"] and r.batch == 4 and r.precision == "unknown" for r in rows)


def test_a_file_a_runtime_cannot_load_fails_its_row_and_the_others_run(cli, tmp_path):
    good = _foreign_onnx(tmp_path / "good.onnx", dynamic=False)
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"\x08\x07 not a protobuf graph")
    result = cli("bench", good, bad, "--threads", "1", *FAST, "--out", tmp_path / "b")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    rows = read_bench(tmp_path / "b" / "bench.json").rows
    assert all(r.ok for r in rows if r.label == "good")
    broken = [r for r in rows if r.label == "broken"]
    assert broken and all(r.status == "failed" and "could not run it" in r.error for r in broken)
    assert any("ONNX Runtime could not run it" in r.error for r in broken)


def test_a_device_this_host_lacks_says_so_and_the_bench_succeeds(cli, tmp_path):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this host has CUDA: the row measures it")
    model = _foreign_onnx(tmp_path / "m.onnx", dynamic=False)
    result = cli("bench", model, "--threads", "1", "--device", "cpu,cuda", *FAST, "--out", tmp_path / "b")
    assert result.returncode == 0, result.stderr
    rows = read_bench(tmp_path / "b" / "bench.json").rows
    cuda = [r for r in rows if r.device == "cuda"]
    assert [r.runtime for r in cuda] == ["onnxruntime"] and cuda[0].status == "unavailable" and "not available on this host" in cuda[0].error
    assert all(r.ok for r in rows if r.device == "cpu")


@pytest.mark.parametrize("args,needles", [
    (("model.pb",), ("'model.pb'", ".onnx, .tflite and .xml")),
    (("missing.onnx",), ("'missing.onnx'", "does not exist")),
    (("m.onnx", "--threads", "0"), ("--threads 0", "pass counts from 1 to")),
    (("m.onnx", "--threads", "4096"), ("--threads 4096", "pass counts from 1 to")),
    (("m.onnx", "--device", "cdua"), ("--device 'cdua'", "did you mean cuda")),
    (("m.onnx", "--rounds", "0"), ("--rounds 0", "at least 1")),
    (("m.onnx", "--runtimes", "tensorrt"), ("--runtimes tensorrt", "onnxruntime")),
])
def test_bad_bench_input_is_one_line(cli, tmp_path, args, needles):
    _foreign_onnx(tmp_path / "m.onnx", dynamic=False)
    (tmp_path / "model.pb").write_bytes(b"x")
    result = cli("bench", *args, "--out", tmp_path / "b")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and all(n in lines[0] for n in needles), result.stderr
    assert not (tmp_path / "b").exists()


def test_the_shipped_bench_schema_is_the_one_the_types_make():
    from edgezoo.bench_results import render_schema

    assert SCHEMA_PATH.read_text() == render_schema(), "regenerate edgezoo/bench.schema.json from edgezoo/bench_results.py"


def test_bench_results_of_another_version_are_refused_in_one_line(tmp_path):
    from edgezoo.errors import BadInput

    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"schema_version": 99, "rows": []}))
    with pytest.raises(BadInput, match="schema version 99; this edgezoo reads version 1"):
        read_bench(path)


def test_bench_model_exports_first_then_benches_that_export(cli, tmp_path):
    """--model NAME: its export folder (edgezoo-out/NAME in the working folder) is made when missing,
    then benched; a second call benches the export already there."""
    first = cli("bench", "--model", "mlp", "--threads", "1", "--runtimes", "onnxruntime", *FAST, "--no-plots")
    assert first.returncode == 0, first.stdout + first.stderr
    out = tmp_path / "edgezoo-out" / "mlp"
    manifest = read_manifest(out / "manifest.json")
    report = read_bench(out / "bench.json")
    assert report.model == "mlp" and {r.label for r in report.rows} == {f"onnx {a.precision}" for a in manifest.artifacts if a.format == "onnx"}
    exported_at = (out / "manifest.json").stat().st_mtime_ns
    again = cli("bench", "--model", "mlp", "--threads", "1", "--runtimes", "onnxruntime", *FAST, "--no-plots")
    assert again.returncode == 0, again.stdout + again.stderr
    assert (out / "manifest.json").stat().st_mtime_ns == exported_at  # not exported again


def test_a_provider_onnx_runtime_does_not_start_is_an_error_not_the_cpus_figures(tmp_path):
    """ONNX Runtime answers a provider it cannot start (CUDA's libraries missing, or a CPU-only
    build) by running on the CPU with a warning; timed so, a "cuda" row would be the CPU's numbers."""
    import onnxruntime

    from edgezoo.devices.runners import onnxruntime_runner

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this host starts CUDA")
    model = _foreign_onnx(tmp_path / "m.onnx", dynamic=False)
    with pytest.raises(RuntimeError, match="could not start CUDAExecutionProvider .*fell back to CPUExecutionProvider"):
        onnxruntime_runner(model, 1, ["CUDAExecutionProvider"])
    assert onnxruntime_runner(model, 1).detail["providers"] == ["CPUExecutionProvider"]


def test_on_a_shared_cpu_onnx_runtimes_idle_threads_sleep_and_the_row_says_so(tmp_path, monkeypatch):
    """EDGEZOO_SHARED_CPU (the suite sets it): ONNX Runtime's pool does not spin between calls,
    and the runner's detail records it, so a latency taken so is not mistaken for a spinning one."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    from edgezoo.devices.runners import onnxruntime_runner

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    path = tmp_path / "relu.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    x = np.float32([[-1, 2, -3, 4]])
    monkeypatch.setenv("EDGEZOO_SHARED_CPU", "1")
    shared = onnxruntime_runner(path, 2)
    assert shared.detail["idle_threads"].startswith("asleep") and shared.run([x])[0].tolist() == [[0, 2, 0, 4]]
    monkeypatch.setenv("EDGEZOO_SHARED_CPU", "0")
    assert "idle_threads" not in onnxruntime_runner(path, 2).detail
