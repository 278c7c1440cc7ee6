"""ONNX Runtime int8.

static: QDQ, per-channel int8 weights, uint8 activations (U8S8). U8S8 rather than ORT's default
S8S8: on x86 S8S8 leaves many convolutions in float and barely speeds up (measured: 15 of 52
MobileNet convs stayed float, 1.05-1.4x), U8S8 quantizes all (1.7-2.2x).
weights: ORT's dynamic quantization: per-channel int8 weights for MatMul, Gemm, Gather and LSTM
(DynamicQuantizeLSTM), activations quantized per call; no calibration. Per channel, not ORT's
per-tensor default: one scale over a whole matrix lost the DQN policy (mean return 500 -> 125).
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

from ..quiet import quiet_native


def quantize_onnx(ctx, fp32_path: Path, out_path: Path, scheme: str, keep_float: tuple[str, ...] = ()) -> str:
    if scheme == "weights":
        return _dynamic(ctx, fp32_path, out_path)
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


def _dynamic(ctx, fp32_path: Path, out_path: Path) -> str:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Pre-processed (measured: 3 of 49 MatMuls of the 2-layer LSTM quantized without it, 34% of its
    # constants int8; 49 and 96% with it). Symbolic shapes are not needed for weights.
    # Full 8-bit weights on every CPU, unlike static int8: where the U8S8 kernels saturate (x86
    # without VNNI) the files still met their bounds, and the DQN's checkpoint is chosen for its
    # policy under exactly this rounding (measured on an AVX2-only AMD EPYC: 7-bit weights, mean
    # return 243; asymmetric uint8 ones, 215; 8-bit, 500). Such a host's outputs can then differ
    # from an ARM device's, which do not saturate: `edgezoo verify` says so.
    with _preprocessed(ctx, fp32_path, symbolic_shapes=False) as prepped:
        quantize_dynamic(str(prepped), str(out_path), weight_type=QuantType.QInt8, per_channel=True)
    return "dynamic: per-channel int8 weights (MatMul, Gemm, Gather, LSTM), activations quantized per call"


def _static_qdq(ctx, fp32_path: Path, out_path: Path, keep_float: tuple[str, ...] = ()) -> str:
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

    feeds = ctx.calibration.as_dicts(ctx.input_names)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter(feeds)

        def get_next(self):
            return next(self._it, None)

    from ..hostinfo import int8_sums_saturate

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
        kept += ", weights within 7 bits (this x86 CPU has no VNNI: its uint8 x int8 sums saturate at 16 bits)"
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
