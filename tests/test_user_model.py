"""A user's own nn.Module goes through the same exporters and checks as the zoo."""

from __future__ import annotations

import numpy as np
import torch

from edgezoo.manifest import read_manifest


def test_user_model_int8_with_random_calibration_warns(cli, user_models, tmp_path):
    out = tmp_path / "out"
    result = cli("export", "--model", f"{user_models}:TinyNet", "--input-shape", "1,3,16,16", "--int8", "--out", out)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "calibrates on random inputs" in result.stderr
    manifest = read_manifest(out / "manifest.json")
    assert manifest.model == "tinynet"
    assert [i.shape for i in manifest.inputs] == [[1, 3, 16, 16]]
    assert manifest.reference.metric is None  # no data given: parity only
    assert manifest.calibration.startswith("random inputs")
    assert {(a.format, a.precision) for a in manifest.artifacts} == {(f, p) for f in ("onnx", "tflite", "openvino") for p in ("fp32", "int8")}
    for row in manifest.artifacts:
        assert row.status == "ok", row
        assert (out / row.path).is_file()
        if row.precision == "fp32":
            assert row.rel_error < 1e-4
        else:
            assert row.cosine >= 0.98
    assert "tinynet" in result.stdout and "onnx" in result.stdout  # the table reached the terminal


def test_int8_scheme_weights_for_a_users_module_needs_no_calibration(cli, user_models, tmp_path):
    out = tmp_path / "out"
    result = cli("export", "--model", f"{user_models}:TinyNet", "--input-shape", "1,3,16,16", "--int8", "--int8-scheme", "weights",
                 "--formats", "onnx,openvino", "--out", out)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "calibrates" not in result.stderr  # nothing calibrates, so no warning about random inputs
    manifest = read_manifest(out / "manifest.json")
    assert (manifest.int8_scheme, manifest.calibration) == ("weights", None)
    int8 = [a for a in manifest.artifacts if a.precision == "int8"]
    assert [(a.format, a.int8_scheme, a.status) for a in int8] == [("onnx", "weights", "ok"), ("openvino", "weights", "ok")]
    assert all(a.scheme.startswith("int8 weights") and a.scheme.endswith("float activations") for a in int8), [a.scheme for a in int8]

    bad = cli("export", "--model", f"{user_models}:TinyNet", "--input-shape", "1,3,16,16", "--int8", "--int8-scheme", "dynamic", "--out", tmp_path / "bad")
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert "--int8-scheme 'dynamic'" in bad.stderr and "static, weights" in bad.stderr
    assert not (tmp_path / "bad").exists()


def test_user_weights_and_calibration_files(cli, user_models, tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("um", user_models)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(3)
    net = module.TinyNet()
    from safetensors.torch import save_file

    save_file(net.state_dict(), str(tmp_path / "tiny.safetensors"))
    np.save(tmp_path / "calib.npy", np.random.default_rng(0).random((16, 3, 16, 16), dtype=np.float32))
    out = tmp_path / "out"
    result = cli("export", "--model", f"{user_models}:TinyNet", "--input-shape", "1,3,16,16", "--weights", tmp_path / "tiny.safetensors",
                 "--calib", tmp_path / "calib.npy", "--int8", "--formats", "onnx", "--out", out)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "random inputs" not in result.stderr
    manifest = read_manifest(out / "manifest.json")
    assert manifest.calibration == "user file calib.npy, 16 samples"
    assert [a.format for a in manifest.artifacts] == ["onnx", "onnx"]

    import onnxruntime as ort

    x = np.random.default_rng(1).random((1, 3, 16, 16), dtype=np.float32)
    got = ort.InferenceSession(str(out / "tinynet.onnx")).run(None, {"input": x})[0]
    with torch.inference_mode():
        want = net.eval()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)  # the user's weights, not fresh ones


def test_converter_failure_is_a_failed_row_and_others_land(cli, user_models, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    result = cli("export", "--model", f"{user_models}:Bucketize", "--input-shape", "1,9", "--out", out)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    manifest = read_manifest(out / "manifest.json")
    rows = {a.format: a for a in manifest.artifacts}
    assert rows["onnx"].status == "ok" and (out / rows["onnx"].path).is_file()
    assert rows["openvino"].status == "ok" and (out / rows["openvino"].path).is_file()
    assert rows["tflite"].status == "failed"
    assert rows["tflite"].error.startswith("litert-torch failed:")
    assert "bucketize" in rows["tflite"].error  # the converter's own reason, named
    assert rows["tflite"].path is None and not (out / "bucketize.tflite").exists()
    assert "litert-torch failed" in result.stdout + result.stderr
    assert "tflite" in (out / "export.log").read_text()
    assert (out / "notes.txt").read_text() == "mine"  # files that are not ours stay


def test_export_leaves_the_callers_torch_thread_count_alone(user_models, tmp_path):
    # export times torch at --threads; a notebook or a test worker calling it keeps its own count.
    from edgezoo.pipeline import export

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = export(f"{user_models}:TinyNet", input_shape="1,3,16,16", formats="onnx", threads=2, out=tmp_path / "out")
        assert result.manifest.threads == 2 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
