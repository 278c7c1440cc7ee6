"""What `edgezoo verify` writes: verify.json's types, typed and versioned like the manifest and
bench.json, with a JSON Schema made from them (shipped as ``verify.schema.json``). Imports no torch
and no runtime."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from . import typed
from .devices import portable
from .manifest import Host

SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).with_name("verify.schema.json")
# The bounds the bundles' check holds a device to, defined once (devices/portable.py):
FP32_REL_BOUND = portable.REL_BOUND     # max |arm64 - x86| / max |x86|, for float outputs
INT8_UNIT_BOUND = portable.UNIT_BOUND   # max |arm64 - x86| in units of the output's quantization step


@dataclass
class VerifyRow:
    """One file in one runtime on one emulated core, against the same file and runtime on this host."""

    label: str                         # "onnx int8"; the file's name for a file without a manifest
    format: str
    precision: str                     # "fp32", "int8", or "unknown" without a manifest
    runtime: str                       # "onnxruntime", "litert"
    core: str                          # "cortex-a72"
    status: str                        # "ok", "mismatch", "failed"
    path: str | None = None
    sha256: str | None = None
    samples: int = 0
    inputs: list[str] = field(default_factory=list)     # "1x3x224x224 float32"
    # How far apart, over every sample and output: in units of the output's quantization step
    # where the file stores it quantized (bound 1), else relative to the largest x86 value.
    max_abs_diff: float | None = None
    max_rel_diff: float | None = None
    max_units: float | None = None
    bound: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass
class VerifyReport:
    sources: list[str]
    model: str | None
    arch: str
    cores: list[str]
    samples: int
    host: Host
    host_versions: dict[str, str | None]
    guest_versions: dict[str, str]          # what ran inside the emulated Python
    emulator: str                           # QEMU's version line
    seconds: float
    rows: list[VerifyRow]
    note: str = "emulated: outputs are the real aarch64 builds'; emulated time says nothing of a device's latency"
    schema_version: int = SCHEMA_VERSION

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1) + "\n"

    @classmethod
    def from_dict(cls, data, source: str = "verify.json") -> "VerifyReport":
        return typed.from_versioned(cls, data, SCHEMA_VERSION, source, "verify", "run edgezoo verify again")


def render_schema() -> str:
    schema = typed.json_schema(VerifyReport, SCHEMA_VERSION, "edgezoo verify results", f"edgezoo-verify-{SCHEMA_VERSION}")
    return json.dumps(schema, indent=1) + "\n"


def read_verify(path: str | Path) -> VerifyReport:
    return VerifyReport.from_dict(typed.read_json(path, "verify results", "run edgezoo verify again"), repr(str(path)))
