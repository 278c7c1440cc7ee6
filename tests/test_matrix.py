"""Every registered format x precision, on real runtimes, checked against torch from the files on disk."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from edgezoo.export import FORMATS
from edgezoo.fileio import sha256_file
from edgezoo.pipeline import PRECISIONS

CASES = [(f, p) for f in FORMATS for p in PRECISIONS]


def test_small_model_trains_above_its_bar(matrix_export, small_mobilenet):
    # The reference metric is torch fp32 on the held-out test split; a digits CNN that cannot reach
    # the flagship's bar would make every int8 bound meaningless.
    assert matrix_export.manifest["reference"]["metric"] >= small_mobilenet.min_metric


def test_every_case_is_in_the_manifest(matrix_export):
    got = {(a["format"], a["precision"]) for a in matrix_export.manifest["artifacts"]}
    assert got == set(CASES)


@pytest.mark.parametrize("fmt,precision", CASES, ids=[f"{f}-{p}" for f, p in CASES])
def test_artifact(matrix_export, small_mobilenet, fmt, precision):
    manifest = matrix_export.manifest
    row = next(a for a in manifest["artifacts"] if (a["format"], a["precision"]) == (fmt, precision))
    assert row["status"] == "ok", row["error"]
    assert row["error"] is None

    # The files on disk are the ones the manifest describes.
    path = matrix_export.out_dir / row["path"]
    assert path.is_file()
    assert row["sha256"] == sha256_file(path)
    assert row["bytes"] == sum((matrix_export.out_dir / f["path"]).stat().st_size for f in row["files"])

    # Run the artifact again, independently of the pipeline, over the whole test split.
    runner = FORMATS[fmt].runner(path, 2)
    data = small_mobilenet.load_data(small_mobilenet.inputs[0].shape)
    model = small_mobilenet.build()
    from edgezoo.train import trained_model

    model, _ = trained_model(small_mobilenet)
    outs, refs, targets = [], [], []
    for inputs, target in data.batches("test", 1):
        outs.append(runner([t.numpy() for t in inputs])[0])
        with torch.inference_mode():
            refs.append(model(*inputs).numpy())
        targets.append(target.numpy())
    outs, refs, targets = np.concatenate(outs), np.concatenate(refs), np.concatenate(targets)
    accuracy = float((outs.argmax(1) == targets).mean())
    torch_accuracy = float((refs.argmax(1) == targets).mean())
    assert accuracy == pytest.approx(row["metric"])
    assert torch_accuracy == pytest.approx(manifest["reference"]["metric"])
    assert row["agreement"] == pytest.approx(float((outs.argmax(1) == refs.argmax(1)).mean()))

    if precision == "fp32":
        rel = np.abs(outs - refs).max() / np.abs(refs).max()
        assert rel < 1e-4
        assert row["precision_ran"] == "f32" if fmt == "openvino" else row["precision_ran"] == "fp32"
    else:
        assert torch_accuracy - accuracy <= 0.01 + 1e-9, f"int8 lost {100 * (torch_accuracy - accuracy):.2f} points"
        # A real int8 model: markedly smaller than its fp32 twin.
        fp32 = next(a for a in manifest["artifacts"] if (a["format"], a["precision"]) == (fmt, "fp32"))
        assert row["bytes"] < 0.5 * fp32["bytes"]
    assert row["latency_ms"] > 0


def test_manifest_is_complete(matrix_export):
    manifest = json.loads(matrix_export.manifest_path.read_text())
    assert manifest["model"] == "mobilenet"
    assert manifest["input"] == {"name": "image", "shape": [1, 3, 64, 64], "dtype": "float32"}
    assert manifest["reference"]["framework"] == "torch"
    assert manifest["reference"]["metric_name"] == "accuracy"
    for package in ("torch", "onnx", "onnxruntime", "openvino", "nncf", "litert-torch", "ai-edge-litert", "ai-edge-quantizer"):
        assert manifest["versions"][package], package
    assert manifest["calibration"].startswith("digits train split")
    for row in manifest["artifacts"]:
        for key in ("format", "precision", "path", "bytes", "sha256", "status", "metric", "agreement", "max_abs_diff", "latency_ms", "error"):
            assert key in row, key
    # Nothing left over from staging.
    assert not [p for p in matrix_export.out_dir.iterdir() if p.name.startswith(".")]
