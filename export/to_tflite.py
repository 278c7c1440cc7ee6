"""torch -> TFLite with litert-torch (no TensorFlow); full-integer int8 via ai-edge-quantizer."""

from __future__ import annotations

from pathlib import Path

from ..devices.runners import litert_runner
from ..quantize.litert_int8 import quantize_full_integer
from ..quiet import quiet_native
from .base import ExportContext, Format


def export_fp32(ctx: ExportContext, path: Path) -> None:
    with quiet_native():
        import litert_torch

        edge_model = litert_torch.convert(ctx.model.eval(), ctx.example_inputs)
        edge_model.export(str(path))


TFLITE = Format(
    name="tflite",
    label="TFLite / LiteRT",
    runtime="ai-edge-litert",
    suffix=".tflite",
    export_fp32=export_fp32,
    quantize_int8=quantize_full_integer,
    runner=litert_runner,
    packages=("litert-torch", "ai-edge-litert", "ai-edge-quantizer"),
)
