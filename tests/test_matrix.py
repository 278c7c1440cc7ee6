"""Every registered model x format x precision, on real runtimes, checked against torch from the
files on disk. A model registered today is covered today."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from edgezoo.check import fixed_batch
from edgezoo.devices.runners import output_tuple
from edgezoo.export import FORMATS

from edgezoo import zoo
from edgezoo.fileio import sha256_file
from edgezoo.manifest import read_manifest
from edgezoo.pipeline import PRECISIONS

MODELS = zoo.names()
CASES = [(m, f, p) for m in MODELS for f in FORMATS for p in PRECISIONS]


@pytest.mark.parametrize("name", MODELS)
def test_small_variant_clears_the_bar(zoo_export, name):
    # The reference metric is torch fp32 on the held-out test split; a model that misses its bar
    # would make every int8 bound meaningless.
    spec, result = zoo_export(name)
    data = spec.load_data(spec.inputs[0].shape)
    bar = spec.bar(data)
    assert bar is not None, f"{name} has no bar to clear: give its card min_metric or baseline_margin"
    metric = result.manifest.reference.metric
    assert data.measure.clears(metric, bar[0]), f"{name}: torch {data.metric_name} {metric:.4f} misses {bar[0]:.4g} ({bar[1]})"
    assert result.manifest.reference.bar.met is True
    assert {(a.format, a.precision) for a in result.manifest.artifacts} == {(f, p) for f in FORMATS for p in PRECISIONS}


_TORCH: dict = {}


def _torch_side(spec):
    """The test split in the export's fixed batch, and the trained torch model's outputs on it,
    computed once for a model's six artifacts (the cases of one model run one after another, so
    only the latest model's are kept)."""
    if spec.name not in _TORCH:
        from edgezoo.train import trained_model

        _TORCH.clear()
        data = spec.load_data(spec.inputs[0].shape)
        model, _ = trained_model(spec)
        batch = spec.inputs[0].shape[0]
        feeds, refs, targets = [], [], []
        for inputs, target in data.batches("test", batch):
            n = len(target)
            inputs = fixed_batch(inputs, batch)
            feeds.append(([t.numpy() for t in inputs], n))
            with torch.inference_mode():
                refs.append(output_tuple(model(*inputs))[0].numpy()[:n])
            targets.append(target.numpy())
        _TORCH[spec.name] = (feeds, np.concatenate(refs)[: data.size("test")], np.concatenate(targets))
    return _TORCH[spec.name]


@pytest.mark.parametrize("name,fmt,precision", CASES, ids=[f"{m}-{f}-{p}" for m, f, p in CASES])
def test_artifact(zoo_export, name, fmt, precision):
    spec, result = zoo_export(name)
    manifest = result.manifest
    row = next(a for a in manifest.artifacts if (a.format, a.precision) == (fmt, precision))
    assert row.status == "ok", row.error
    assert row.error is None

    # The files on disk are the ones the manifest describes.
    path = result.out_dir / row.path
    assert path.is_file()
    assert row.sha256 == sha256_file(path)
    assert row.bytes == sum((result.out_dir / f.path).stat().st_size for f in row.files)

    # Run the artifact again, independently of the pipeline, over the whole test split.
    runner = FORMATS[fmt].runner(path, 2)
    data = spec.load_data(spec.inputs[0].shape)
    feeds, refs, targets = _torch_side(spec)
    outs = np.concatenate([runner(feed)[0][:n] for feed, n in feeds])[: data.size("test")]
    measure = data.measure
    if data.scored_by_outputs:
        metric, torch_metric = data.metric(outs, targets), data.metric(refs, targets)
    if data.rollout is not None:
        # The closed loop (episodes, sampling, greedy decoding) driven by this file's runtime again.
        rolled = data.rollout.run(runner)
        assert rolled.summary == row.rollout.summary
        if data.rollout.sets_metric:
            metric, torch_metric = rolled.value, manifest.reference.metric
    assert metric == pytest.approx(row.metric)
    assert torch_metric == pytest.approx(manifest.reference.metric)
    if measure.class_scores:
        assert row.agreement == pytest.approx(float((outs.argmax(-1) == refs.argmax(-1)).mean()))

    if precision == "fp32":
        assert np.abs(outs - refs).max() / np.abs(refs).max() < spec.tolerance.fp32_rel_error
        assert row.precision_ran == FORMATS[fmt].float_precision
        assert FORMATS[fmt].int8_fraction(path) == row.int8_fraction == 0.0  # no float fallback hides here
        if data.rollout is not None and data.rollout.fp32_trace_atol is not None:
            assert row.rollout.trace_max_abs_diff <= data.rollout.fp32_trace_atol
    else:
        assert row.int8_scheme == spec.int8_scheme_for(fmt)
        bound = spec.tolerance.int8_metric_drop
        worse = measure.worse_by(metric, torch_metric)
        assert worse <= bound + 1e-9, f"int8 {measure.name} {metric:.4f} is {measure.say(worse)} worse than torch (bound {measure.say(bound)})"
        # A real int8 model: most of its stored constants are 8-bit (weights; biases may stay 32-bit).
        assert FORMATS[fmt].int8_fraction(path) == pytest.approx(row.int8_fraction, abs=1e-4)
        assert row.int8_fraction >= 0.75
    if spec.tolerance.artifacts_clear_bar:
        assert measure.clears(metric, spec.bar(data)[0])
    assert row.latency_ms > 0


@pytest.mark.trains("mobilenet")
def test_flagship_manifest_is_complete(zoo_export):
    spec, result = zoo_export("mobilenet")
    manifest = read_manifest(result.manifest_path)
    assert manifest.model == "mobilenet"
    assert [(i.name, i.shape, i.dtype) for i in manifest.inputs] == [("image", list(spec.inputs[0].shape), "float32")]
    assert manifest.reference.framework == "torch"
    assert manifest.reference.metric_name == "accuracy"
    for package in ("torch", "onnx", "onnxruntime", "openvino", "nncf", "litert-torch", "ai-edge-litert", "ai-edge-quantizer"):
        assert manifest.versions[package], package
    assert manifest.calibration.startswith("digits train split")
    for row in json.loads(result.manifest_path.read_text())["artifacts"]:  # the file itself, key by key
        for key in ("format", "precision", "path", "bytes", "sha256", "status", "metric", "agreement", "max_abs_diff", "latency_ms", "error"):
            assert key in row, key
    # Nothing left over from staging.
    assert not [p for p in result.out_dir.iterdir() if p.name.startswith(".")]
