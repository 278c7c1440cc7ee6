"""ONNX Runtime int8.

static: QDQ, per-channel int8 weights, uint8 activations (U8S8). U8S8 rather than ORT's default
S8S8: on x86 S8S8 leaves many convolutions in float and barely speeds up (measured: 15 of 52
MobileNet convs stayed float, 1.05-1.4x), U8S8 quantizes all (1.7-2.2x).
weights: int8 weights, float activations, as OpenVINO's and LiteRT's "weights" files: each
Conv, MatMul, Gemm and Gather (embedding) weight stored as symmetric per-output-channel int8 in
[-127, 127] behind a DequantizeLinear, so ONNX Runtime computes in float with exactly the rounded
weights (the rule of quantize.simulate.with_int8_weights, which the DQN's checkpoint selection
plays). Not ORT's dynamic quantization, which also quantizes the activations per call: its uint8
x int8 products then carry the CPU's integer arithmetic into the file's outputs (on x86 without
VNNI pairs of them saturate at 16 bits: the DQN's Q-values moved by up to 19 and one trained
seed's policy played 84 against 500), and it ran slower than fp32 for four of the five models
using this scheme (README's int8-schemes table). Per channel: one scale over a whole matrix
(ORT's per-tensor default) lost the DQN policy (mean return 500 -> 125).
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

from ..devices.portable import INT8_WEIGHTS_KEY
from ..quiet import quiet_native
from .symmetric import symmetric_int8


def quantize_onnx(ctx, fp32_path: Path, out_path: Path, scheme: str, keep_float: tuple[str, ...] = ()) -> str:
    if scheme == "weights":
        return _weights_only(ctx, fp32_path, out_path)
    if scheme == "qat":
        import shutil

        from ..qat import qat_graph

        shutil.copyfile(qat_graph(ctx), out_path)
        return "QAT: the fine-tuned fake-quantized graph as QDQ, per-channel int8 weights, uint8 activations over ranges learned in fine-tuning"
    return _static_qdq(ctx, fp32_path, out_path, keep_float)


def int8_layers(ctx, fp32_path: Path, int8_path: Path) -> list[str]:
    """The nodes static QDQ quantized in ``int8_path`` (those reading a DequantizeLinear's output),
    by the names ``nodes_to_exclude`` takes, in graph order."""
    import onnx

    graph = onnx.load(str(int8_path), load_external_data=False).graph
    dequantized = {out for node in graph.node if node.op_type == "DequantizeLinear" for out in node.output}
    return [node.name for node in graph.node
            if node.name and node.op_type not in ("QuantizeLinear", "DequantizeLinear") and dequantized.intersection(node.input)]


@contextlib.contextmanager
def _preprocessed(ctx, fp32_path: Path, symbolic_shapes: bool):
    """ORT's quant_pre_process into a temporary file: it folds constant subgraphs (an unrolled
    LSTM's transposed recurrent weights) into initializers, which the quantizers only then see as
    weights, and optionally infers symbolic shapes for static QDQ. ORT's symbolic shape inference
    raises on some graphs (word2vec's: a TypeError inside it); the exported shapes are static, so
    ONNX's own shape inference, which quant_pre_process runs as well, then stands in."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(dir=ctx.workdir) as tmp, quiet_native():
        prepped = Path(tmp) / "prepped.onnx"
        try:
            quant_pre_process(str(fp32_path), str(prepped), skip_symbolic_shape=not symbolic_shapes)
        except Exception:
            if not symbolic_shapes:
                raise
            quant_pre_process(str(fp32_path), str(prepped), skip_symbolic_shape=True)
        yield prepped


def _weights_only(ctx, fp32_path: Path, out_path: Path) -> str:
    import onnx

    # Pre-processed: it folds constant subgraphs (an unrolled LSTM's transposed recurrent weights)
    # into initializers, which only then read as weights (measured with ORT's dynamic quantizer:
    # 3 of 49 MatMuls of the 2-layer LSTM quantized without it, 49 with it).
    with _preprocessed(ctx, fp32_path, symbolic_shapes=False) as prepped:
        model = onnx.load(str(prepped))
    done = int8_weights(model.graph)
    # What tells a runner to fold the dequantized weights once at load (devices/portable.py).
    onnx.helper.set_model_props(model, {**{p.key: p.value for p in model.metadata_props}, INT8_WEIGHTS_KEY: "int8 weights behind DequantizeLinear; "
                                         "open with session config session.disable_quant_qdq=1 to fold them once at load"})
    onnx.save(model, str(out_path))
    return f"int8 weights ({done} Conv/MatMul/Gemm/Gather tensors, symmetric per channel, dequantized in the graph), float activations"


def _weight_axis(node, port: int, rank: int) -> int | None:
    """The axis of one scale per output channel for a weight read by ``node`` at input ``port``;
    None where the weight is no Conv/MatMul/Gemm/Gather weight (or a batched one: a
    DequantizeLinear scales along one axis only)."""
    if node.op_type == "Conv" and port == 1 and rank >= 3:
        return 0                     # [out, in / groups, *kernel]
    if rank != 2:
        return None
    if node.op_type == "Gemm" and port == 1:
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return 0 if trans_b else 1   # B is [N, K] transposed, [K, N] otherwise
    if node.op_type == "MatMul" and port == 1:
        return 1                     # [K, N]
    if node.op_type == "Gather" and port == 0:
        return 0                     # an embedding table [rows, dim]: one scale per row
    return None


def int8_weights(graph) -> int:
    """Rewrites ``graph`` in place: each float32 initializer that only Conv, MatMul, Gemm or Gather
    read as their weight becomes int8 (symmetric, one scale per output channel, [-127, 127]) ->
    DequantizeLinear under the initializer's own name. Returns how many it rewrote."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    initializers = {i.name: i for i in graph.initializer}
    axes: dict[str, set] = {}
    for node in graph.node:
        for port, name in enumerate(node.input):
            if name in initializers:
                axes.setdefault(name, set()).add(_weight_axis(node, port, len(initializers[name].dims)))
    dequantize = []
    for name, found in axes.items():
        if len(found) != 1 or None in found or initializers[name].data_type != TensorProto.FLOAT:
            continue  # read by anything else as well, or along two axes: left float
        (axis,) = found
        w = numpy_helper.to_array(initializers[name])
        q, scale = symmetric_int8(w, tuple(d for d in range(w.ndim) if d != axis))
        graph.initializer.remove(initializers[name])
        graph.initializer.extend([numpy_helper.from_array(q, f"{name}_quantized"), numpy_helper.from_array(scale.reshape(-1), f"{name}_scale"),
                                  numpy_helper.from_array(np.zeros(q.shape[axis], np.int8), f"{name}_zero_point")])
        dequantize.append(helper.make_node("DequantizeLinear", [f"{name}_quantized", f"{name}_scale", f"{name}_zero_point"], [name],
                                           name=f"{name}_DequantizeLinear", axis=axis))
    nodes = dequantize + list(graph.node)  # initializers feed the graph from its start
    del graph.node[:]
    graph.node.extend(nodes)
    return len(dequantize)


def _static_qdq(ctx, fp32_path: Path, out_path: Path, keep_float: tuple[str, ...] = ()) -> str:
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

    feeds = ctx.calibration.as_dicts(ctx.input_names)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter(feeds)

        def get_next(self):
            return next(self._it, None)

    from ..hostinfo import SATURATES, int8_sums_saturate

    # One calibration per fp32 file and export: accuracy-aware int8's trials reuse its ranges.
    cache = ctx.workdir / f"{fp32_path.stem}.ort-calibration.json"
    # 7-bit weights where this CPU's U8S8 kernels add products in 16 bits (ORT's reduce_range,
    # designed for that): with 8 the sums saturate and the file loses accuracy here.
    reduce_range = int8_sums_saturate()
    with _preprocessed(ctx, fp32_path, symbolic_shapes=True) as prepped:

        def quantize(exclude):
            quantize_static(str(prepped), str(out_path), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
                            nodes_to_exclude=list(exclude), calibration_cache_path=cache, reduce_range=reduce_range)

        quantize(keep_float)
        unbounded = _unbounded_nodes(prepped, cache)
        if unbounded - set(keep_float):
            quantize(sorted(set(keep_float) | unbounded))  # the cached ranges: no second calibration
    kept = f", {len(keep_float)} layers kept float" if keep_float else ""
    if unbounded:
        kept += f", {len(unbounded)} nodes float around tensors calibration saw reach inf (an additive -inf mask)"
    if reduce_range:
        kept += f", weights within 7 bits ({SATURATES})"
    return f"static QDQ, per-channel int8 weights, uint8 activations, min/max over {len(feeds)} samples{kept}"


def _unbounded_nodes(model_path: Path, cache: Path) -> set[str]:
    """The nodes making or reading a tensor whose calibrated range is not finite. An attention
    mask added as -inf gives its scores a range of (-inf, x): no 8-bit scale can hold it, and ORT
    would quantize it all the same (measured: torch.nn.Transformer's decoder, rmse 0.10 -> 0.36).
    Such tensors stay float."""
    import numpy as np
    import onnx
    from onnxruntime.quantization.calibrate import load_tensors_data

    bad = {name for name, data in load_tensors_data(cache).data.items()
           if not all(np.isfinite(np.asarray(v, dtype=np.float64)).all() for v in data.range_value)}
    if not bad:
        return set()
    graph = onnx.load(str(model_path), load_external_data=False).graph
    return {node.name for node in graph.node if node.name and bad.intersection([*node.input, *node.output])}
