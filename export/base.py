"""What every exporter is: a name, a suffix, fp32 export, int8 quantization, and a runner.

Checking, hashing, atomic placement and the manifest are written once, in edgezoo.pipeline.
"""

from __future__ import annotations

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
    int8_scheme: str = "static"     # the card's choice for the format at hand; each quantizer maps it to its runtime
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


@dataclass(frozen=True)
class Format:
    name: str                   # "onnx"
    label: str                  # "ONNX (ONNX Runtime)"
    runtime: str                # the package that runs it, for the manifest's versions
    suffix: str                 # main file's suffix
    export_fp32: Callable[[ExportContext, Path], str | None]   # -> a note on how, or None
    quantize_int8: Callable[[ExportContext, Path, Path], str]   # (ctx, fp32 path, int8 path) -> scheme
    runner: Callable[[Path, int], object]
    # Share of the artifact's constant tensor elements stored in 8 bits: what int8 really covers.
    int8_fraction: Callable[[Path], float]
    companions: tuple[str, ...] = ()   # other suffixes that belong to the artifact (OpenVINO's .bin)
    packages: tuple[str, ...] = ()     # distributions whose versions the manifest records
    # Load and run each artifact once in a child process before in-process: for a runtime measured
    # to abort in native code on some files (LiteRT), so the crash fails one row, not the export.
    probe_in_child: bool = False

    def files(self, path: Path) -> list[Path]:
        return [path] + [path.with_suffix(s) for s in self.companions]
