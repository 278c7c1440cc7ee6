"""ONNX -> OpenVINO IR (.xml + .bin, fp32 weights kept fp32); int8 via NNCF post-training quantization."""

from __future__ import annotations

from pathlib import Path

from ..devices.runners import openvino_runner
from ..quantize.openvino_int8 import quantize_nncf
from .base import ExportContext, Format, quiet_converter
from .to_onnx import onnx_graph


def export_fp32(ctx: ExportContext, path: Path) -> None:
    import openvino as ov

    source = onnx_graph(ctx)
    with quiet_converter():
        model = ov.convert_model(str(source))
        # save_model would store weights as fp16 by default: the fp32 artifact keeps fp32.
        ov.save_model(model, str(path), compress_to_fp16=False)


OPENVINO = Format(
    name="openvino",
    label="OpenVINO IR",
    runtime="openvino",
    suffix=".xml",
    companions=(".bin",),
    export_fp32=export_fp32,
    quantize_int8=quantize_nncf,
    runner=openvino_runner,
    packages=("openvino", "nncf"),
)
