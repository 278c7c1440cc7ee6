"""torch -> ONNX (dynamo exporter, opset 18, weights inside the file); int8 via ONNX Runtime QDQ."""

from __future__ import annotations

import shutil
from pathlib import Path

from ..devices.runners import onnxruntime_runner
from ..quantize.onnxruntime_int8 import quantize_static_qdq
from ..quiet import quiet_native
from .base import ExportContext, Format


def onnx_graph(ctx: ExportContext) -> Path:
    """The fp32 ONNX graph, exported once per call and shared (OpenVINO converts from it)."""

    def make() -> Path:
        import torch

        path = ctx.workdir / "graph.onnx"
        with quiet_native():
            program = torch.onnx.export(
                ctx.model,
                ctx.example_inputs,
                dynamo=True,
                opset_version=18,
                external_data=False,
                input_names=ctx.input_names,
                output_names=ctx.output_names,
                verbose=False,
            )
            program.save(str(path), external_data=False)
        import onnx

        onnx.checker.check_model(str(path), full_check=True)
        return path

    return ctx.once("onnx", make)


def export_fp32(ctx: ExportContext, path: Path) -> None:
    shutil.copyfile(onnx_graph(ctx), path)


ONNX = Format(
    name="onnx",
    label="ONNX (ONNX Runtime)",
    runtime="onnxruntime",
    suffix=".onnx",
    export_fp32=export_fp32,
    quantize_int8=quantize_static_qdq,
    runner=onnxruntime_runner,
    packages=("onnx", "onnxscript", "onnxruntime"),
)
