"""Device latency estimates (devices/estimate.py): fitted on other models' published figures,
MobileNetV2 predicted within 30% of each profiled device's published figure, and bench's rows."""

from __future__ import annotations


import pytest
import torch

from edgezoo.bench_results import read_bench
from edgezoo.devices import estimate as est


def test_no_profile_calibrates_on_the_model_it_is_checked_against():
    for name in est.profile_names():
        profile = est.load_profile(name)
        calibrated = {p["model"] for p in profile["calibration"]}
        checked = {p["model"] for p in profile.get("check", [])}
        assert checked and not calibrated & checked, name
        for point in profile["calibration"] + profile["check"]:
            assert point["source"] in profile["sources"], (name, point)


def test_mobilenet_v2_is_predicted_within_30_percent_of_each_published_figure():
    refs = est.reference_costs()
    published = [n for n in est.profile_names() if not est.load_profile(n).get("measured")]
    assert {"rpi4", "rpi5", "pixel3a", "jetson_nano", "sd8gen2"} <= set(published)
    for name in published:  # the development host's measured profile shows its error in the README
        profile = est.load_profile(name)
        for check in profile["check"]:
            u, basis = est.fit(profile, check["runtime"], check["precision"])
            assert u is not None, basis
            guess = est.predict(profile, check["precision"], refs[check["model"]][check["precision"]], u, check["threads"])
            assert abs(guess / check["latency_ms"] - 1) <= 0.30, (name, check, guess)
            # ... where the plain roofline, the baseline to beat, is off by more.
            roof = est.roofline_ms(profile, check["precision"], est.reference_ops()[check["model"]][check["precision"]], check["threads"])
            assert abs(roof / check["latency_ms"] - 1) > abs(guess / check["latency_ms"] - 1) and roof < check["latency_ms"]


def test_the_stored_reference_costs_are_what_the_code_measures(tmp_path):
    from edgezoo.devices.reference_models import build

    path = tmp_path / "v3s.onnx"
    torch.onnx.export(build("mobilenet_v3_small"), (torch.zeros(1, 3, 224, 224),), str(path), dynamo=False, opset_version=17)
    stored = est.reference_ops()["mobilenet_v3_small"]
    for precision in ("fp32", "int8"):
        assert est.graph_costs(path, precision) == stored[precision]
    assert 55e6 < sum(o.macs for o in stored["fp32"]) < 60e6  # MobileNetV3-Small: 56 M MACs as published


@pytest.mark.parametrize("name", ["shufflenet_v2", "mobilenet_v2"])
def test_the_graph_reader_counts_the_macs_torch_computes(name, tmp_path):
    """Every convolution and matrix product of the exported graph counted at its real output size,
    also past a reshape whose shape the graph computes (ShuffleNetV2's channel shuffle), as torch's
    own modules compute them; the stored reference costs hold the same counts."""
    from edgezoo.devices.reference_models import build
    from edgezoo.stats import count_macs

    model = build(name)
    macs = count_macs(model, (torch.zeros(1, 3, 224, 224),))  # torch's own count, on the aten ops
    path = tmp_path / f"{name}.onnx"
    torch.onnx.export(model, (torch.zeros(1, 3, 224, 224),), str(path), dynamo=False, opset_version=17)
    stored = est.reference_ops()[name]
    assert sum(o.macs for o in est.graph_costs(path, "fp32")) == macs
    assert sum(o.macs for o in stored["fp32"]) == sum(o.macs for o in stored["int8"]) == macs


def test_onnx_and_tflite_files_of_one_model_count_the_same_macs(zoo_export):
    spec, result = zoo_export("cnn")
    files = {(a.format, a.precision): result.out_dir / a.path for a in result.manifest.artifacts}
    onnx_macs = sum(o.macs for o in est.graph_costs(files["onnx", "fp32"], "fp32"))
    tflite_macs = sum(o.macs for o in est.graph_costs(files["tflite", "fp32"], "fp32"))
    assert onnx_macs > 0 and onnx_macs == tflite_macs


def test_bench_on_a_profile_estimates_and_says_so(cli, zoo_export, tmp_path):
    spec, result = zoo_export("cnn")
    run = cli("bench", result.out_dir, "--device", "rpi4,pixel3a", "--threads", "1,4", "--out", tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    rows = read_bench(tmp_path / "bench.json").rows
    by = {(r.device, r.label, r.threads): r for r in rows}
    tflite32 = by["rpi4", "tflite fp32", 4]
    assert tflite32.status == "estimated" and tflite32.latency is None
    assert tflite32.estimated_ms > tflite32.roofline_ms > 0 and "mobilenet_v1" in tflite32.estimate_basis
    assert by["rpi4", "tflite int8", 4].status == "estimated"
    assert by["rpi4", "tflite fp32", 1].estimated_ms > tflite32.estimated_ms          # fewer threads, slower
    assert by["pixel3a", "tflite fp32", 4].status == "unavailable"                  # two big cores
    assert "no published int8 figures" in by["pixel3a", "tflite int8", 1].error
    assert by["rpi4", "onnx fp32", 4].status == "unavailable"                         # nothing published for ONNX Runtime there
    assert "estimated, not measured" in run.stdout
    assert all(r.device in ("rpi4", "pixel3a") for r in rows)


@pytest.mark.parametrize("device,needle", [("rpi", "did you mean rpi5"), ("jetson", "did you mean jetson_nano"), ("raspberrypi", "rpi4, rpi5")])
def test_an_unknown_device_is_one_line(cli, tmp_path, device, needle):
    (tmp_path / "m.onnx").write_bytes(b"x")
    run = cli("bench", tmp_path / "m.onnx", "--device", device)
    assert run.returncode == 2 and needle in run.stderr and len(run.stderr.strip().splitlines()) == 1
