"""torch -> ONNX (dynamo exporter, opset 18, weights inside the file); int8 via ONNX Runtime QDQ."""

from __future__ import annotations

import shutil
from pathlib import Path

from ..devices.runners import onnxruntime_runner
from ..quantize.onnxruntime_int8 import int8_layers, quantize_onnx
from ..quiet import quiet_native
from .base import ExportContext, Format


def onnx_graph(ctx: ExportContext) -> Path:
    """The fp32 ONNX graph, exported once per export and shared (OpenVINO converts from it). The
    formats' children run side by side: the first to ask makes it under a lock on the staging
    folder, and the others wait for it there (rather than export the same graph again at the same
    time, into the same partial file). A child killed while holding the lock releases it."""

    def make() -> Path:
        import fcntl

        with open(ctx.workdir / "graph.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            return _make_graph(ctx)

    return ctx.once("onnx", make)


def _make_graph(ctx: ExportContext) -> Path:
    """The graph in the staging folder: made now unless another child made it already."""
    import os

    import torch

    path = ctx.workdir / "graph.onnx"
    if path.is_file():
        return path
    partial = ctx.workdir / "graph.partial.onnx"  # a child killed mid-write leaves no graph behind
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
        program.save(str(partial), external_data=False)
    import onnx

    onnx.checker.check_model(str(partial), full_check=True)
    os.replace(partial, path)
    return path


def export_fp32(ctx: ExportContext, path: Path) -> None:
    shutil.copyfile(onnx_graph(ctx), path)


def int8_fraction(path: Path) -> float:
    import onnx
    from onnx import TensorProto

    sizes = {}
    for t in onnx.load(str(path), load_external_data=False).graph.initializer:
        n = 1
        for d in t.dims:
            n *= d
        sizes[t.data_type] = sizes.get(t.data_type, 0) + n
    total = sum(sizes.values())
    return (sizes.get(TensorProto.INT8, 0) + sizes.get(TensorProto.UINT8, 0)) / total if total else 0.0


ONNX = Format(
    name="onnx",
    label="ONNX (ONNX Runtime)",
    runtime="onnxruntime",
    suffix=".onnx",
    export_fp32=export_fp32,
    quantize_int8=quantize_onnx,
    int8_layers=int8_layers,
    runner=onnxruntime_runner,
    int8_fraction=int8_fraction,
    fp32_converter="torch.onnx.export",
    int8_converter="onnxruntime.quantization",
    fp32_note="dynamo exporter, opset 18",
    int8_note="static QDQ, per-channel int8 weights, uint8 activations, min/max calibration",
    packages=("onnx", "onnxscript", "onnxruntime"),
)
