"""LiteRT int8 with ai-edge-quantizer.

static: full-integer int8 weights and activations. Calibration uses min/max over all samples: the
default moving average under-estimates ranges (measured: 10-20x larger errors).
weights: weight-only int8 (float activations). Dynamic-range int8 is not offered: on XNNPACK it ran
3x slower than fp32.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def int8_layers(ctx, fp32_path: Path, int8_path: Path) -> list[str]:
    """The ops of ``int8_path`` that compute on int8 inputs (not the QUANTIZE/DEQUANTIZE at its
    edges), by their output tensor's name (ai-edge-quantizer's scope for an op), in graph order."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    edges = {schema.BuiltinOperator.QUANTIZE, schema.BuiltinOperator.DEQUANTIZE}
    tree = flatbuffer_utils.read_model_from_bytearray(bytearray(int8_path.read_bytes()))
    layers = []
    for graph in tree.subgraphs:
        for op in graph.operators:
            code = tree.operatorCodes[op.opcodeIndex]
            if max(code.builtinCode, code.deprecatedBuiltinCode) in edges or not len(op.outputs):
                continue
            if any(i >= 0 and graph.tensors[i].type == schema.TensorType.INT8 for i in op.inputs):
                layers.append(graph.tensors[op.outputs[0]].name.decode(errors="replace"))
    return layers


def quantize_tflite(ctx, fp32_path: Path, out_path: Path, scheme: str, keep_float: tuple[str, ...] = ()) -> str:
    from ..quiet import quiet_native

    if scheme == "qat":
        raise NotImplementedError("--qat's int8 is the fine-tuned model's fake-quantized graph, which litert-torch has no lowering for; "
                                  "ONNX and OpenVINO carry it (export this format with --int8 for post-training int8)")
    with quiet_native():
        from ai_edge_quantizer import quantizer, recipe

        float_model = fp32_path.read_bytes()
        if scheme == "weights":
            q = quantizer.Quantizer(float_model)
            q.load_quantization_recipe(recipe.weight_only_wi8_afp32())
            out_path.write_bytes(q.quantize().quantized_model)
            return "weight-only: int8 weights, float activations"
        return _full_integer(ctx, float_model, out_path, keep_float)


def _full_integer(ctx, float_model: bytes, out_path: Path, keep_float: tuple[str, ...] = ()) -> str:
    import copy
    import hashlib
    import re

    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_quantizer import calibrator, quantizer, recipe, recipe_manager
    from ai_edge_quantizer.utils import qsv_utils

    signature = Interpreter(model_content=float_model).get_signature_runner()
    from ..devices.portable import in_order

    details = in_order(signature.get_input_details())
    # litert-torch stores int64 inputs (token ids, time steps) as int32: feed them as such.
    samples = [{name: np.asarray(x, dtype=d["dtype"]) for (name, d), x in zip(details.items(), s)} for s in ctx.calibration.samples]

    # An op's scope is its output tensors' names, each followed by ";": the later entry wins.
    chosen = recipe.static_wi8_ai8() + [{"regex": f"^{re.escape(name)};", "operation": "*", "algorithm_key": "no_quantize", "op_config": {}}
                                        for name in keep_float]

    def calibrate():  # once per float model and export, for every op: accuracy-aware int8's trials reuse it
        rm = recipe_manager.RecipeManager()
        rm.load_quantization_recipe(recipe.static_wi8_ai8())
        calib = calibrator.Calibrator(float_model, num_threads=ctx.threads, qsv_update_func=qsv_utils.min_max_update)
        calib.calibrate({"serving_default": samples}, rm)
        return calib.get_model_qsvs()

    qsvs = ctx.once(f"litert-calibration:{hashlib.sha256(float_model).hexdigest()}", calibrate)
    q = quantizer.Quantizer(float_model)
    q.load_quantization_recipe(chosen)
    result = q.quantize(copy.deepcopy(qsvs), enable_progress_bar=False, enable_progress_report=False)
    out_path.write_bytes(_repair_per_axis_dimensions(bytes(result.quantized_model), float_model))
    kept = f", {len(keep_float)} layers kept float" if keep_float else ""
    return f"full-integer static int8 (int8 in/out), per-channel weights, min/max over {len(samples)} samples{kept}"


def _repair_per_axis_dimensions(model: bytes, float_model: bytes) -> bytes:
    """ai-edge-quantizer 0.10 mis-quantizes a per-channel tensor that litert-torch wrote as
    [1, 1, 1, C] (a transposed convolution's folded batch-norm bias): it stores C scales along
    dimension 0, of size 1, which LiteRT refuses at load ("num_scales must be 1 ... but got C"), and
    it divides the values by every scale, storing C x C of them, of which LiteRT reads the first C:
    each rounded with the first channel's scale (measured on the GAN: channel c's bias
    came out scale[c] / scale[0] times too large, up to 1.8x; the digit score fell 0.7). Such a
    tensor is re-quantized here from the float model's own values with the C scales the quantizer
    chose, along the one axis of size C. Scales and every other tensor are untouched."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    tree = flatbuffer_utils.read_model_from_bytearray(bytearray(model))
    floats = None
    repaired = 0
    for graph in tree.subgraphs:
        for tensor in graph.tensors:
            q = tensor.quantization
            if q is None or q.scale is None or len(q.scale) <= 1 or tensor.shape is None:
                continue
            shape, n = list(tensor.shape), len(q.scale)
            axes = [i for i, d in enumerate(shape) if d == n]
            if shape[q.quantizedDimension] == n or len(axes) != 1:
                continue
            if floats is None:
                floats = _float_constants(float_model)
            if tensor.type != schema.TensorType.INT32 or tensor.name not in floats or floats[tensor.name].size != n:
                raise RuntimeError(f"ai-edge-quantizer quantized {tensor.name.decode(errors='replace')} (shape {shape}) "
                                   f"along a dimension of size {shape[q.quantizedDimension]} with {n} scales; edgezoo can "
                                   "re-quantize only an int32 bias it finds in the float model")
            values = np.round(floats[tensor.name].ravel().astype(np.float64) / np.asarray(q.scale, np.float64))
            tree.buffers[tensor.buffer].data = np.frombuffer(values.astype(np.int32).tobytes(), np.uint8)
            q.quantizedDimension = axes[0]
            repaired += 1
    return bytes(flatbuffer_utils.convert_object_to_bytearray(tree)) if repaired else model


def _float_constants(float_model: bytes) -> dict[bytes, np.ndarray]:
    """name -> value of every float32 constant tensor of a .tflite model."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    tree = flatbuffer_utils.read_model_from_bytearray(bytearray(float_model))
    out = {}
    for graph in tree.subgraphs:
        for tensor in graph.tensors:
            data = tree.buffers[tensor.buffer].data if tensor.buffer < len(tree.buffers) else None
            if tensor.type == schema.TensorType.FLOAT32 and data is not None and len(data):
                out[tensor.name] = np.frombuffer(bytes(data), np.float32)
    return out
