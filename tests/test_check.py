"""The checker in two steps: measuring (what the artifact does against torch) and judging (the
card's verdict, as a typed failure). NaN compares false, so it is judged first."""

from __future__ import annotations

import numpy as np
import pytest
from edgezoo import zoo
from edgezoo.check import FailureKind, judge_artifact, measure_artifact, reference_outputs
from edgezoo.devices.runners import Runner, torch_runner


@pytest.fixture(scope="module")
def mlp_reference():
    from edgezoo.train import trained_model

    spec = zoo.get("mlp").small_variant()
    model, _ = trained_model(spec)  # trained (about a second): a lost metric is then a real loss
    data = spec.load_data(spec.inputs[0].shape)
    return spec, model, reference_outputs(model, spec, data)


def _altered(model, change) -> Runner:
    plain = torch_runner(model)
    return Runner("altered", lambda inputs: [change(o) for o in plain(inputs)], "as stored")


def test_torch_itself_passes(mlp_reference):
    spec, model, ref = mlp_reference
    measured = measure_artifact(torch_runner(model), ref)
    assert measured.rel_error == 0 and measured.agreement == 1 and measured.nonfinite == 0
    assert judge_artifact(measured, ref, "fp32", spec) is None


def test_nan_outputs_fail_even_where_every_bound_would_pass(mlp_reference):
    spec, model, ref = mlp_reference

    def one_nan(o):
        o = o.copy()
        o.flat[0] = np.nan
        return o

    measured = measure_artifact(_altered(model, one_nan), ref)
    assert measured.nonfinite == len(ref.inputs) and np.isnan(measured.max_abs_diff)
    for precision in ("fp32", "int8"):
        failure = judge_artifact(measured, ref, precision, spec)
        assert failure.kind is FailureKind.NONFINITE and "NaN or inf" in failure.message


def test_fp32_drift_and_int8_metric_loss_are_typed(mlp_reference):
    spec, model, ref = mlp_reference
    drifted = measure_artifact(_altered(model, lambda o: o * 1.001), ref)
    assert judge_artifact(drifted, ref, "fp32", spec).kind is FailureKind.FP32_PARITY
    assert judge_artifact(drifted, ref, "int8", spec) is None  # within int8's own bound
    shuffled = measure_artifact(_altered(model, lambda o: o[:, ::-1].copy()), ref)
    failure = judge_artifact(shuffled, ref, "int8", spec)
    assert failure.kind is FailureKind.INT8_METRIC and "worse than torch fp32" in failure.message


def test_an_int8_file_mostly_float_is_typed(mlp_reference):
    spec, model, ref = mlp_reference
    measured = measure_artifact(torch_runner(model), ref)
    assert judge_artifact(measured, ref, "int8", spec, int8_fraction=0.1).kind is FailureKind.INT8_FRACTION
    assert judge_artifact(measured, ref, "int8", spec, int8_fraction=0.9) is None


def test_wrong_output_shapes_are_typed(mlp_reference):
    spec, model, ref = mlp_reference
    measured = measure_artifact(_altered(model, lambda o: o[:, :1]), ref)
    assert not measured.shapes_match
    assert judge_artifact(measured, ref, "fp32", spec).kind is FailureKind.SHAPES
