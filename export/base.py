"""What every exporter is: a name, a suffix, fp32 export, int8 quantization, and a runner.

Checking, hashing, atomic placement and the manifest are written once, in edgezoo.pipeline.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
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
    _cache: dict = field(default_factory=dict)

    def once(self, key: str, make: Callable[[], object]):
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]


@dataclass(frozen=True)
class Format:
    name: str                   # "onnx"
    label: str                  # "ONNX (ONNX Runtime)"
    runtime: str                # the package that runs it, for the manifest's versions
    suffix: str                 # main file's suffix
    export_fp32: Callable[[ExportContext, Path], None]
    quantize_int8: Callable[[ExportContext, Path, Path], str]   # (ctx, fp32 path, int8 path) -> scheme
    runner: Callable[[Path, int], object]
    companions: tuple[str, ...] = ()   # other suffixes that belong to the artifact (OpenVINO's .bin)
    packages: tuple[str, ...] = ()     # distributions whose versions the manifest records

    def files(self, path: Path) -> list[Path]:
        return [path] + [path.with_suffix(s) for s in self.companions]


@contextlib.contextmanager
def quiet_converter():
    """Converters print pages of progress and warnings to stdout/stderr (fd-level, from C++ too);
    keep them out of the user's terminal but hand them back if the conversion fails."""
    log = tempfile.TemporaryFile(mode="w+b")
    saved = [os.dup(1), os.dup(2)]
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    levels = {name: logging.getLogger(name).level for name in ("torch", "torch.onnx", "torch.export", "nncf", "absl")}
    for name in levels:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        log.close()
