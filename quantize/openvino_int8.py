"""OpenVINO int8 on the fp32 IR.

static: NNCF post-training quantization (default preset), calibrated.
weights: int8 weights, float activations: every MatMul and Gather (embedding) weight stored as
symmetric per-output-channel int8 in [-127, 127] with float32 scales, the rule ONNX Runtime and
LiteRT use for their int8 weights, decompressed inside the CPU plugin's kernels. Two measured
reasons not to use ``nncf.compress_weights(INT8_ASYM / INT8_SYM)`` here:
- By default the CPU plugin also quantizes the activations of compressed-weight layers on the fly
  (``DYNAMIC_QUANTIZATION_GROUP_SIZE`` 32), so "float activations" would not be true. The IR turns
  it off in its own ``runtime_options``, which ``compile_model`` reads, so a deployed file runs as
  checked (DQN with the same int8 weights: mean return 476 with it on, 500 off).
- NNCF's asymmetric grid and its signed-scale symmetric grid mapped to [-128, 127] cost the DQN
  policy 105 and 200 steps of return (395, 300) where [-127, 127] kept 500, in OpenVINO and in a
  torch simulation alike.
"""

from __future__ import annotations

from pathlib import Path

from .symmetric import symmetric_int8

#: The IR's ``runtime_options``: OpenVINO applies these at compile time unless the caller overrides them.
WEIGHT_ONLY_RUNTIME_OPTIONS = {"DYNAMIC_QUANTIZATION_GROUP_SIZE": "0"}


def int8_layers(ctx, fp32_path: Path, int8_path: Path) -> list[str]:
    """The ops NNCF quantized in ``int8_path`` (those reading a FakeQuantize's output), by friendly
    name (what NNCF's ignored scope takes: the fp32 IR's names), in graph order."""
    from ..quiet import quiet_native

    with quiet_native():
        import openvino as ov

        model = ov.Core().read_model(str(int8_path))
    layers = []
    for op in model.get_ordered_ops():
        if op.get_type_name() != "FakeQuantize" and any(i.get_source_output().get_node().get_type_name() == "FakeQuantize" for i in op.inputs()):
            layers.append(op.get_friendly_name())
    return layers


def quantize_openvino(ctx, fp32_path: Path, out_path: Path, scheme: str, keep_float: tuple[str, ...] = ()) -> str:
    from ..quiet import quiet_native

    with quiet_native():
        import openvino as ov

        model = ov.Core().read_model(str(fp32_path))
        if scheme == "qat":
            from ..qat import qat_graph

            ov.save_model(ov.convert_model(str(qat_graph(ctx))), str(out_path), compress_to_fp16=False)
            return "QAT: the fine-tuned fake-quantized graph, converted from its QDQ ONNX into FakeQuantize int8"
        if scheme == "weights":
            n = compress_weights_int8(model)
            ov.save_model(model, str(out_path), compress_to_fp16=False)
            return f"int8 weights ({n} MatMul/Gather tensors, symmetric per channel), float activations"
        import nncf

        samples = [list(s) for s in ctx.calibration.samples]
        ignored = nncf.IgnoredScope(names=list(keep_float)) if keep_float else None
        from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix

        from ..hostinfo import SATURATES, int8_sums_saturate

        # NNCF's overflow fix (7-bit weights) on every layer, not only the first (its default),
        # where this CPU's int8 kernels add products in 16 bits, and then its full bias correction
        # (not the fast one) for what the coarser weights shift. Measured on an AVX2-only host, small
        # variants' int8 accuracy against float: MobileNetV2 0.950 / 0.967 with the default, 0.972
        # with the fix; MobileNetV3 0.964 / 0.975 with the default, 0.961 with the fix, 0.967 with
        # the fix and full bias correction.
        saturates = int8_sums_saturate()
        advanced = AdvancedQuantizationParameters(overflow_fix=OverflowFix.ENABLE if saturates else OverflowFix.FIRST_LAYER)
        quantized = nncf.quantize(model, nncf.Dataset(samples), subset_size=len(samples), ignored_scope=ignored, advanced_parameters=advanced,
                                  fast_bias_correction=not saturates)
        ov.save_model(quantized, str(out_path), compress_to_fp16=False)
    kept = f", {len(keep_float)} layers kept float (ignored scope)" if keep_float else ""
    if saturates:
        kept += f", weights within 7 bits in every layer and full bias correction ({SATURATES})"
    return f"NNCF post-training quantization (mixed-precision default preset), {len(samples)} samples{kept}"


def compress_weights_int8(model) -> int:
    """Rewrites ``model`` in place: each float constant weight (2-D or more) of a MatMul or Gather
    becomes Constant(int8) -> Convert(f32) -> Multiply(scale), scales per output channel (MatMul) or
    per row (Gather). Returns how many weights it rewrote."""
    import openvino as ov
    import openvino.opset13 as ops

    done = 0
    for op in model.get_ordered_ops():
        kind = op.get_type_name()
        if kind == "MatMul":
            port, transposed = 1, op.get_attributes().get("transpose_b", False)
            reduce_axis = -1 if transposed else -2  # the contraction axis; scales run along the other
        elif kind == "Gather":
            port, reduce_axis = 0, -1  # an embedding table [rows, dim]: one scale per row
        else:
            continue
        source = op.input(port).get_source_output()
        const = source.get_node()
        if const.get_type_name() != "Constant" or const.get_output_element_type(0) != ov.Type.f32 or len(const.get_output_shape(0)) < 2:
            continue
        q, scale = symmetric_int8(const.get_data(), (reduce_axis,))
        weight = ops.multiply(ops.convert(ops.constant(q), ov.Type.f32), ops.constant(scale))
        weight.get_output_tensor(0).set_names(source.get_names())
        op.input(port).replace_source_output(weight.output(0))
        done += 1
    for key, value in WEIGHT_ONLY_RUNTIME_OPTIONS.items():
        model.set_rt_info(value, ["runtime_options", key])
    model.validate_nodes_and_infer_types()
    return done
