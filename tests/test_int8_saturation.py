"""On an x86 CPU without VNNI, uint8 x int8 kernels add pairs of products in 16 bits and saturate:
static int8 there keeps its weights within 7 bits (ONNX Runtime's reduce_range, NNCF's overflow fix
on every layer), says so in the manifest, and elsewhere uses the full 8 bits."""

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
def test_dynamic_int8_keeps_all_8_bits_on_every_cpu(zoo_export):
    """ONNX Runtime's dynamic int8 (the "weights" scheme) keeps full 8-bit weights even where the
    U8S8 kernels saturate: the DQN's checkpoint is chosen for its policy under exactly that rounding
    (7-bit weights lost it: mean return 243 against 500; asymmetric uint8 ones 215), and its host
    check passes; what saturation costs elsewhere, `edgezoo verify` names."""
    spec, result = zoo_export("dqn")
    row = next(a for a in result.manifest.artifacts if (a.format, a.precision) == ("onnx", "int8"))
    assert row.ok and row.int8_scheme == "weights" and "7 bits" not in row.scheme
    graph = onnx.load(str(result.out_dir / row.path)).graph
    weights = [numpy_helper.to_array(t) for t in graph.initializer if t.data_type == onnx.TensorProto.INT8 and len(t.dims) >= 2]
    assert weights, "no int8 weight tensors in the dynamic int8 file"
    assert max(int(np.abs(w.astype(np.int32)).max()) for w in weights) == 127
