"""What every exporter is: a name, a suffix, fp32 export, int8 quantization, and a runner.

Checking, hashing, atomic placement and the manifest are written once, in edgezoo.pipeline.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from ..quantize.calibration import CalibrationSet


@dataclass
class ExportContext:
    """What one export call shares between formats: the torch model, its example inputs, named
    inputs/outputs, calibration samples, and intermediates made once (the ONNX graph OpenVINO
    converts from)."""

    model: torch.nn.Module
    example_inputs: tuple[torch.Tensor, ...]
    input_names: list[str]
    output_names: list[str]
    calibration: CalibrationSet
    workdir: Path
    threads: int = 2
    qat_model: torch.nn.Module | None = None   # export --qat: the fake-quantized model (edgezoo.qat)
    _cache: dict = field(default_factory=dict)

    def once(self, key: str, make: Callable[[], object]):
        """``make()`` on first use; later calls get its result, or its exception again."""
        if key not in self._cache:
            try:
                self._cache[key] = (make(), None)
            except Exception as exc:
                self._cache[key] = (None, exc)
        value, error = self._cache[key]
        if error is not None:
            raise error
        return value


def name_of(function: Callable) -> str:
    """``module:qualname`` a spawned child imports; refused for what it cannot import."""
    qualname = getattr(function, "__qualname__", "")
    if "<locals>" in qualname or not getattr(function, "__module__", None):
        raise TypeError(f"{function!r} runs in a child process, so it must be defined at a module's top level")
    return f"{function.__module__}:{qualname}"


def by_name(name: str):
    module, qualname = name.split(":")
    target = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


@dataclass(frozen=True)
class Format:
    """Everything generic code knows of a format: the pipeline, the manifest, the terminal table,
    the CLI's ``--formats`` and the README's "what export leaves" table read it from here."""

    name: str                   # "onnx"
    label: str                  # "ONNX (ONNX Runtime)"
    runtime: str                # the package that runs it, for the manifest's versions
    suffix: str                 # main file's suffix
    export_fp32: Callable[[ExportContext, Path], str | None]   # -> a note on how, or None
    # (ctx, fp32 path, int8 path, int8 scheme: "static" or "weights"[, layers to keep float]) -> how it quantized
    quantize_int8: Callable[..., str]
    runner: Callable[[Path, int], object]
    # Share of the artifact's constant tensor elements stored in 8 bits: what int8 really covers.
    int8_fraction: Callable[[Path], float]
    # What fails, named in a failed row: "litert-torch failed: ..."
    fp32_converter: str = ""
    int8_converter: str = ""
    # What the README's "what export leaves" table says of each file.
    fp32_note: str = ""
    int8_note: str = ""
    # Added to the model's name in the file's stem: "mobilenet_openvino.xml" beside "mobilenet.onnx".
    stem_tag: str = ""
    # The float precision the runtime is asked for and must report back for an fp32 artifact to
    # count as fp32 ("as stored" where the runtime computes in the file's own types).
    float_precision: str = "fp32"
    companions: tuple[str, ...] = ()   # other suffixes that belong to the artifact (OpenVINO's .bin)
    packages: tuple[str, ...] = ()     # distributions whose versions the manifest records
    # (ctx, fp32 path, its full static int8) -> the layers that file quantized, by the names
    # ``quantize_int8(..., keep_float)`` takes to leave them float; None: no accuracy-aware int8 (--max-drop).
    int8_layers: Callable[[ExportContext, Path, Path], list[str]] | None = None

    def __post_init__(self):
        # They run in a child process, which finds them by name.
        for function in (self.export_fp32, self.quantize_int8, self.runner, self.int8_fraction, self.int8_layers):
            if function is not None:
                name_of(function)

    def files(self, path: Path) -> list[Path]:
        return [path] + [path.with_suffix(s) for s in self.companions]

    def file_name(self, model: str, precision: str) -> str:
        """The main file's name: mobilenet.onnx, mobilenet_int8.tflite, mobilenet_openvino_int8.xml."""
        return f"{model}{self.stem_tag}{'_int8' if precision == 'int8' else ''}{self.suffix}"

    def converter(self, precision: str) -> str:
        return (self.int8_converter if precision == "int8" else self.fp32_converter) or f"{self.name} {precision} export"
