"""Every registered model x format x precision, on real runtimes, checked against torch from the
files on disk. A model registered today is covered today."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from edgezoo import registry
from edgezoo.export import FORMATS
from edgezoo.fileio import sha256_file
from edgezoo.pipeline import PRECISIONS

MODELS = registry.names()
CASES = [(m, f, p) for m in MODELS for f in FORMATS for p in PRECISIONS]


@pytest.mark.parametrize("name", MODELS)
def test_small_variant_clears_the_bar(zoo_export, name):
    # The reference metric is torch fp32 on the held-out test split; a model that misses its bar
    # would make every int8 bound meaningless.
    spec, result = zoo_export(name)
    assert result.manifest["reference"]["metric"] >= spec.min_metric
    assert {(a["format"], a["precision"]) for a in result.manifest["artifacts"]} == {(f, p) for f in FORMATS for p in PRECISIONS}


@pytest.mark.parametrize("name,fmt,precision", CASES, ids=[f"{m}-{f}-{p}" for m, f, p in CASES])
def test_artifact(zoo_export, name, fmt, precision):
    spec, result = zoo_export(name)
    manifest = result.manifest
    row = next(a for a in manifest["artifacts"] if (a["format"], a["precision"]) == (fmt, precision))
    assert row["status"] == "ok", row["error"]
    assert row["error"] is None

    # The files on disk are the ones the manifest describes.
    path = result.out_dir / row["path"]
    assert path.is_file()
    assert row["sha256"] == sha256_file(path)
    assert row["bytes"] == sum((result.out_dir / f["path"]).stat().st_size for f in row["files"])

    # Run the artifact again, independently of the pipeline, over the whole test split.
    from edgezoo.train import trained_model

    runner = FORMATS[fmt].runner(path, 2)
    data = spec.load_data(spec.inputs[0].shape)
    model, _ = trained_model(spec)
    outs, refs, targets = [], [], []
    for inputs, target in data.batches("test", spec.inputs[0].shape[0]):
        outs.append(runner([t.numpy() for t in inputs])[0])
        with torch.inference_mode():
            refs.append(model(*inputs).numpy())
        targets.append(target.numpy())
    outs, refs, targets = np.concatenate(outs), np.concatenate(refs), np.concatenate(targets)
    metric, torch_metric = data.metric(outs, targets), data.metric(refs, targets)
    assert metric == pytest.approx(row["metric"])
    assert torch_metric == pytest.approx(manifest["reference"]["metric"])
    assert row["agreement"] == pytest.approx(float((outs.argmax(1) == refs.argmax(1)).mean()))

    if precision == "fp32":
        assert np.abs(outs - refs).max() / np.abs(refs).max() < spec.tolerance.fp32_rel_error
        assert row["precision_ran"] == ("f32" if fmt == "openvino" else "fp32")
        assert FORMATS[fmt].int8_fraction(path) == row["int8_fraction"] == 0.0  # no float fallback hides here
    else:
        bound = spec.tolerance.int8_metric_drop
        assert torch_metric - metric <= bound + 1e-9, f"int8 lost {100 * (torch_metric - metric):.2f} points (bound {100 * bound:.1f})"
        # A real int8 model: most of its stored constants are 8-bit (weights; biases may stay 32-bit).
        assert FORMATS[fmt].int8_fraction(path) == pytest.approx(row["int8_fraction"], abs=1e-4)
        assert row["int8_fraction"] >= 0.75
    assert row["latency_ms"] > 0


def test_flagship_manifest_is_complete(zoo_export):
    spec, result = zoo_export("mobilenet")
    manifest = json.loads(result.manifest_path.read_text())
    assert manifest["model"] == "mobilenet"
    assert manifest["input"] == {"name": "image", "shape": list(spec.inputs[0].shape), "dtype": "float32"}
    assert manifest["reference"]["framework"] == "torch"
    assert manifest["reference"]["metric_name"] == "accuracy"
    for package in ("torch", "onnx", "onnxruntime", "openvino", "nncf", "litert-torch", "ai-edge-litert", "ai-edge-quantizer"):
        assert manifest["versions"][package], package
    assert manifest["calibration"].startswith("digits train split")
    for row in manifest["artifacts"]:
        for key in ("format", "precision", "path", "bytes", "sha256", "status", "metric", "agreement", "max_abs_diff", "latency_ms", "error"):
            assert key in row, key
    # Nothing left over from staging.
    assert not [p for p in result.out_dir.iterdir() if p.name.startswith(".")]
