"""torch -> TFLite with litert-torch (no TensorFlow); full-integer int8 via ai-edge-quantizer."""

from __future__ import annotations

from pathlib import Path

from ..devices.runners import litert_runner
from ..quantize.litert_int8 import int8_layers, quantize_tflite
from ..errors import one_line
from ..quiet import quiet_native
from .base import ExportContext, Format


def export_fp32(ctx: ExportContext, path: Path) -> None:
    with quiet_native():
        import litert_torch

        # The signature names inputs after forward's arguments when given them by keyword, else
        # args_0, args_1, ...: by keyword when the export's input names are forward's own.
        try:
            if ctx.input_names == _forward_arguments(ctx.model)[: len(ctx.input_names)]:
                edge_model = litert_torch.convert(ctx.model.eval(), sample_args=(), sample_kwargs=dict(zip(ctx.input_names, ctx.example_inputs)))
            else:
                edge_model = litert_torch.convert(ctx.model.eval(), ctx.example_inputs)
        except Exception as exc:
            if "GuardOnDataDependentSymNode" not in type(exc).__name__:
                raise
            raise RuntimeError("forward branches on a tensor's values, which torch.export (litert-torch's front end) cannot follow: "
                               "compute the condition from shapes or constants (torch.nn.Transformer compares a given mask with a "
                               f"causal one unless told tgt_is_causal=True); {type(exc).__name__}: {one_line(exc, 90)}") from exc
        edge_model.export(str(path))


def _forward_arguments(model) -> list[str]:
    import inspect

    try:
        params = inspect.signature(model.forward).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def int8_fraction(path: Path) -> float:
    """Over the tensors with data in the flatbuffer (weights, biases), not the activations."""
    import numpy as np
    from ai_edge_quantizer.utils import tfl_flatbuffer_utils

    model = tfl_flatbuffer_utils.read_model(str(path))
    eight = total = 0
    for graph in model.subgraphs:
        for tensor in graph.tensors:
            buffer = model.buffers[tensor.buffer]
            if buffer.data is None and not getattr(buffer, "size", 0):
                continue  # an activation: no constant data
            n = int(np.prod(tensor.shape)) if len(tensor.shape) else 1
            total += n
            eight += n if tensor.type in _EIGHT_BIT else 0
    return eight / total if total else 0.0


_EIGHT_BIT = (9, 3)  # tflite TensorType INT8, UINT8


TFLITE = Format(
    name="tflite",
    label="TFLite / LiteRT",
    runtime="ai-edge-litert",
    suffix=".tflite",
    export_fp32=export_fp32,
    quantize_int8=quantize_tflite,
    int8_layers=int8_layers,
    runner=litert_runner,
    int8_fraction=int8_fraction,
    fp32_converter="litert-torch",
    int8_converter="ai-edge-quantizer",
    fp32_note="litert-torch",
    int8_note="full-integer (int8 in and out), ai-edge-quantizer static, min/max calibration",
    packages=("litert-torch", "ai-edge-litert", "ai-edge-quantizer"),
)
