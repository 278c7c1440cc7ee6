"""On an x86 CPU without VNNI, uint8 x int8 kernels add pairs of products in 16 bits and saturate:
static int8 there keeps its weights within 7 bits (ONNX Runtime's reduce_range, NNCF's overflow fix
on every layer), says so in the manifest, and elsewhere uses the full 8 bits. The "weights" scheme
computes in float on every CPU (int8 weights behind DequantizeLinear): no integer kernel reaches it."""

from __future__ import annotations

import pytest

import numpy as np
import onnx
from onnx import numpy_helper

from edgezoo.hostinfo import cpu_flags, int8_sums_saturate


def test_the_decision_follows_the_cpus_flags():
    import platform

    x86 = platform.machine().lower() in ("x86_64", "amd64")
    assert int8_sums_saturate() == (x86 and not cpu_flags() & {"avx512_vnni", "avx_vnni", "amx_int8"})


def test_static_int8_weights_fit_this_cpus_kernels_and_the_manifest_says_which(zoo_export):
    spec, result = zoo_export("cnn")
    rows = {(a.format, a.precision): a for a in result.manifest.artifacts}
    onnx_row, openvino_row = rows["onnx", "int8"], rows["openvino", "int8"]
    assert onnx_row.ok and openvino_row.ok and onnx_row.int8_scheme == "static"
    graph = onnx.load(str(result.out_dir / onnx_row.path)).graph
    weights = [numpy_helper.to_array(t) for t in graph.initializer if t.data_type == onnx.TensorProto.INT8 and len(t.dims) >= 2]
    assert weights, "no int8 weight tensors in the static int8 file"
    peak = max(int(np.abs(w.astype(np.int32)).max()) for w in weights)
    if int8_sums_saturate():
        assert peak <= 64, f"int8 weights reach {peak}: their sums saturate on this CPU"
        assert "7 bits" in onnx_row.scheme and "7 bits" in openvino_row.scheme
    else:
        assert peak == 127  # per-channel symmetric: each channel's largest weight maps to 127
        assert "7 bits" not in onnx_row.scheme and "7 bits" not in openvino_row.scheme



@pytest.mark.trains("dqn")
def test_int8_weights_compute_in_float_what_the_dqns_selection_played_on_every_cpu(zoo_export):
    """ONNX Runtime's "weights" file holds full 8-bit per-channel weights behind DequantizeLinear
    and computes in float, so no CPU's integer kernels (16-bit saturating sums on x86 without VNNI)
    reach its outputs: they are the outputs of the torch model with the rounded weights that the
    DQN's checkpoint selection played (7-bit weights had lost its policy: mean return 243 against
    500; asymmetric uint8 ones 215; ORT's dynamic int8, which quantizes activations too, 84 for one
    trained seed on an AVX2 host). Its runner folds the weights once at load."""
    import torch

    from edgezoo.devices.portable import INT8_WEIGHTS_KEY, ort_session
    from edgezoo.devices.runners import onnxruntime_runner
    from edgezoo.quantize.simulate import with_int8_weights
    from edgezoo.train import trained_model

    spec, result = zoo_export("dqn")
    row = next(a for a in result.manifest.artifacts if (a.format, a.precision) == ("onnx", "int8"))
    assert row.ok and row.int8_scheme == "weights" and "7 bits" not in row.scheme
    path = result.out_dir / row.path
    model = onnx.load(str(path))
    weights = [numpy_helper.to_array(t) for t in model.graph.initializer if t.data_type == onnx.TensorProto.INT8 and len(t.dims) >= 2]
    assert len(weights) == 4 and all(int(np.abs(w.astype(np.int32)).max()) == 127 for w in weights)
    ops = {n.op_type for n in model.graph.node}
    assert "DequantizeLinear" in ops and not ops & {"QuantizeLinear", "DynamicQuantizeLinear", "MatMulInteger"}
    assert INT8_WEIGHTS_KEY in {p.key for p in model.metadata_props}
    assert ort_session(str(path), 1).get_session_options().get_session_config_entry("session.disable_quant_qdq") == "1"

    simulated = with_int8_weights(trained_model(spec)[0])
    states = np.random.default_rng(0).uniform(-2, 2, (256, 1, 4)).astype(np.float32)
    run = onnxruntime_runner(path, 1)
    got = np.concatenate([run([s])[0] for s in states])
    with torch.no_grad():
        want = np.concatenate([simulated(torch.from_numpy(s)).numpy() for s in states])
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()
    assert (got.argmax(1) == want.argmax(1)).all()
