"""Quantization-aware fine-tuning (--qat): the fake-quantized graph is the int8 file, in ONNX Runtime
and OpenVINO; where litert-torch cannot convert it, the row says so."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgezoo import zoo
from edgezoo.errors import BadInput
from edgezoo.pipeline import export


@pytest.mark.trains("dqn")
def test_qat_int8_is_the_fine_tuned_graph_and_keeps_the_dqns_bar(tmp_path):
    spec = zoo.get("dqn").small_variant()
    result = export(spec, qat=True, qat_epochs=3, formats="onnx,openvino", out=tmp_path / "out")
    m = result.manifest
    rows = {(a.format, a.precision): a for a in m.artifacts}
    assert m.int8_scheme == "qat" and m.calibration is None  # ranges learned in fine-tuning, nothing calibrated
    assert m.qat.epochs == 3 and m.qat.metric_before == pytest.approx(m.reference.metric)
    for fmt in ("onnx", "openvino"):
        row = rows[fmt, "int8"]
        assert row.ok, row
        assert row.int8_scheme == "qat" and row.scheme.startswith("QAT:")
        assert row.metric >= 475  # the card's bar, which every DQN artifact must clear
        assert row.int8_fraction >= 0.5  # the weights stored in 8 bits, not float with a quantize step
    assert rows["onnx", "fp32"].ok and rows["onnx", "fp32"].rel_error < 1e-4  # fp32 stays the trained model
    assert result.ok

    import onnx

    graph = onnx.load(str(tmp_path / "out" / rows["onnx", "int8"].path)).graph
    ops = {n.op_type for n in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    int8_weights = [i for i in graph.initializer if i.data_type == onnx.TensorProto.INT8]
    assert len(int8_weights) >= 3  # the DQN's linear layers' weights, folded to int8
    # Each weight's largest value sits on this host's grid: 127, or 64 where its int8 sums saturate.
    from onnx import numpy_helper

    from edgezoo.qat import weight_max

    peaks = {int(np.abs(numpy_helper.to_array(i).astype(np.int32)).max()) for i in int8_weights if i.dims and len(i.dims) >= 2}
    assert peaks == {weight_max()}, peaks
    assert m.qat.weight_bits == (7 if weight_max() == 64 else 8)


def test_fake_quant_keeps_weights_within_the_grid_asked():
    # 7-bit weights (a host whose int8 sums saturate): every weight on a grid of max|w| / 64 per output channel.
    from edgezoo.qat import freeze, prepare

    torch.manual_seed(0)
    for qmax in (127, 64):
        layer = prepare(torch.nn.Sequential(torch.nn.Linear(16, 8)), qmax)[0]
        freeze(layer)
        w, original = layer.weight.detach(), layer.parametrizations.weight.original.detach()
        scale = original.abs().amax(1, keepdim=True) / qmax
        steps = w / scale
        assert torch.allclose(steps, steps.round(), atol=1e-3)
        assert steps.abs().amax().round() == qmax and (steps.abs().amax(1).round() == qmax).all()
        assert torch.allclose(w, original, atol=float(scale.max()) / 2 + 1e-6)


def test_tflite_says_why_it_has_no_qat_file(tmp_path):
    # litert-torch cannot lower fake-quantize: the TFLite int8 row of a --qat export fails with this.
    from edgezoo.quantize.litert_int8 import quantize_tflite

    with pytest.raises(NotImplementedError, match="litert-torch has no lowering"):
        quantize_tflite(None, tmp_path / "model.tflite", tmp_path / "model_int8.tflite", "qat")


def test_fake_quant_survives_a_child_rebuilding_it(tmp_path):
    # What a converter child does: build the model, prepare() it, load the fine-tuned state_dict.
    from edgezoo.qat import prepare

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    tuned = prepare(model)
    tuned.train()
    tuned(torch.randn(16, 4) * 3)
    tuned.eval()
    state = {k: v.clone() for k, v in tuned.state_dict().items()}
    assert any(k.endswith("qat_input_range") for k in state) and any("parametrizations.weight.original" in k for k in state)
    again = prepare(torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)))
    again.load_state_dict(state, strict=True)
    x = torch.randn(5, 4)
    with torch.no_grad():
        np.testing.assert_array_equal(again.eval()(x).numpy(), tuned(x).numpy())
        # It computes in int8: the first layer's input snaps to 255 steps of its range.
        low, high = (float(v) for v in again[0].qat_input_range)
        assert np.unique(np.round((x.clamp(min(low, 0), max(high, 0)) - min(low, 0)) / ((max(high, 0) - min(low, 0)) / 255))).size <= 256


def test_a_7_bit_grid_reaches_the_converter_child_and_the_file(tmp_path):
    # On a host whose int8 sums saturate the parent fine-tunes with weights in [-64, 64]; the child
    # rebuilds that grid from its ModelSource (not from its own host's default), and the QDQ file
    # stores it: every output channel's largest int8 weight is 64, and ONNX Runtime computes what
    # the fake-quantized torch model does.
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    from edgezoo.export.child import ModelSource
    from edgezoo.models.dqn import QNetwork
    from edgezoo.qat import export_qdq_onnx, prepare, weight_grid

    torch.manual_seed(0)
    tuned = prepare(QNetwork(), 64)
    tuned.train()
    tuned(torch.randn(64, 4))
    tuned.eval()
    torch.save(tuned.state_dict(), tmp_path / "w.pt")
    child = ModelSource(f"{QNetwork.__module__}:{QNetwork.__qualname__}", {}, str(tmp_path / "w.pt"), qat=weight_grid(tuned)).build()
    assert weight_grid(child) == 64
    x = torch.rand(16, 4) * 4 - 2
    with torch.no_grad():
        np.testing.assert_array_equal(child(x).numpy(), tuned(x).numpy())
        export_qdq_onnx(child, (x[:1],), ["observation"], ["q"], tmp_path / "m.onnx")
    weights = [numpy_helper.to_array(i).astype(np.int32) for i in onnx.load(str(tmp_path / "m.onnx")).graph.initializer
               if i.data_type == onnx.TensorProto.INT8 and len(i.dims) == 2]
    assert len(weights) == 4 and all((np.abs(w).max(axis=1) == 64).all() for w in weights)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    for row in x:
        got = session.run(None, {"observation": row[None].numpy()})[0]
        with torch.no_grad():
            np.testing.assert_allclose(got, tuned(row[None]).numpy(), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("kwargs, needle", [
    ({"qat_epochs": 3}, "--epochs 3 sets quantization-aware fine-tuning's epochs: add --qat"),
    ({"qat": True, "qat_epochs": 0}, "--epochs 0"),
    ({"qat": True, "max_drop": 10.0}, "--qat with --max-drop"),
    ({"qat": True, "int8_scheme": "weights"}, "--qat with --int8-scheme"),
])
def test_qat_refusals(tmp_path, kwargs, needle):
    with pytest.raises(BadInput, match=needle.replace("(", r"\(")):
        export(zoo.get("dqn").small_variant(), out=tmp_path / "out", formats="onnx", **kwargs)
    assert not (tmp_path / "out").exists()


def test_qat_needs_training_inputs_for_a_users_model(cli, user_models, tmp_path):
    result = cli("export", "--model", f"{user_models}:TinyNet", "--input-shape", "1,3,16,16", "--qat", "--out", tmp_path / "out")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--qat: tinynet has no training inputs to fine-tune on (a model of your own: give --data" in result.stderr
    assert not (tmp_path / "out").exists()
