"""torch -> ONNX (dynamo exporter, opset 18, weights inside the file); int8 via ONNX Runtime QDQ."""

from __future__ import annotations

import shutil
from pathlib import Path

from ..devices.runners import onnxruntime_runner
from ..quantize.onnxruntime_int8 import int8_layers, quantize_onnx
from ..errors import one_line
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
    note = ctx.workdir / "graph.exporter.txt"
    with quiet_native():
        try:
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
            note.write_text("fp32")
        except Exception as exc:
            if not _untraceable(exc):
                raise
            # torch.export cannot follow a branch on a tensor's values (torch.nn.Transformer
            # compares its mask with a causal one); tracing records the branch taken for these
            # inputs, which is what these static shapes always take.
            cause = exc
            while cause.__cause__ is not None:  # the exporter's wrapper says "step 1/3 failed"; its cause says why
                cause = cause.__cause__
            reason = f"{type(cause).__name__}: {one_line(cause, 160)}"
            try:
                torch.onnx.export(ctx.model, ctx.example_inputs, str(partial), dynamo=False, opset_version=18,
                                  input_names=ctx.input_names, output_names=ctx.output_names)
            except Exception as traced:
                raise RuntimeError(f"torch.export: {reason}; the TorchScript exporter then: {type(traced).__name__}: {one_line(traced, 200)}") from exc
            note.write_text(f"fp32, TorchScript exporter (torch.export could not: {reason})")
    import onnx

    onnx.checker.check_model(str(partial), full_check=True)
    os.replace(partial, path)
    return path


def _untraceable(exc: BaseException) -> bool:
    """torch.export's own failure to capture the model (step 1 of the dynamo exporter), not the ONNX translation's."""
    text = f"{type(exc).__name__} {exc}"
    return "TorchExportError" in text or "GuardOnDataDependentSymNode" in text or "data-dependent" in text


def export_fp32(ctx: ExportContext, path: Path) -> str:
    graph = onnx_graph(ctx)
    shutil.copyfile(graph, path)
    note = graph.with_name("graph.exporter.txt")
    return note.read_text() if note.is_file() else "fp32"


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
