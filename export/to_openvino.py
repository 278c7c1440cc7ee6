"""ONNX -> OpenVINO IR (.xml + .bin, fp32 weights kept fp32); int8 via NNCF post-training quantization."""

from __future__ import annotations

from pathlib import Path

from ..devices import runners
from ..quantize.openvino_int8 import int8_layers, quantize_openvino
from ..quiet import quiet_native
from .base import ExportContext, Format
from .to_onnx import onnx_graph


def export_fp32(ctx: ExportContext, path: Path) -> str:
    import openvino as ov

    try:
        source, options, route = str(onnx_graph(ctx)), {}, "from ONNX"
    except Exception:
        # Some ops reach OpenVINO through its PyTorch frontend but not through the ONNX exporter.
        source, options, route = ctx.model, {"example_input": ctx.example_inputs}, "from torch (the ONNX export failed)"
    with quiet_native():
        model = ov.convert_model(source, **options)
        # save_model would store weights as fp16 by default: the fp32 artifact keeps fp32.
        ov.save_model(model, str(path), compress_to_fp16=False)
    return f"fp32, converted {route}"


def runner(path: Path, threads: int):
    """OpenVINO asked for this format's float precision (f32), not the CPU plugin's own pick."""
    return runners.openvino_runner(path, threads, precision_hint=OPENVINO.float_precision)


def int8_fraction(path: Path) -> float:
    import openvino as ov

    eight = total = 0
    for op in ov.Core().read_model(str(path)).get_ops():
        if op.get_type_name() == "Constant":
            n = 1
            for d in op.get_output_shape(0):
                n *= d
            total += n
            if op.get_output_element_type(0).get_type_name() in ("i8", "u8"):
                eight += n
    return eight / total if total else 0.0


OPENVINO = Format(
    name="openvino",
    label="OpenVINO IR",
    runtime="openvino",
    suffix=".xml",
    companions=(".bin",),
    export_fp32=export_fp32,
    quantize_int8=quantize_openvino,
    int8_layers=int8_layers,
    runner=runner,
    int8_fraction=int8_fraction,
    fp32_converter="openvino.convert_model",
    int8_converter="nncf.quantize",
    fp32_note="fp32 weights",
    int8_note="NNCF post-training quantization",
    stem_tag="_openvino",
    # On CPUs with AVX512_BF16 OpenVINO would otherwise run a float model in bf16.
    float_precision="f32",
    packages=("openvino", "nncf"),
)
