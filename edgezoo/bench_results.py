"""What `edgezoo bench` writes: bench.json's types, typed and versioned like the manifest, and
described by a JSON Schema made from them (shipped as ``bench.schema.json``). Imports no torch and
no runtime: reports read results without the ML stack."""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path

from . import typed
from .manifest import Host

RUNTIME_LABELS = {"torch": "torch eager", "onnxruntime": "ONNX Runtime", "openvino": "OpenVINO",
                  "litert": "LiteRT + XNNPACK", "litert-ref": "LiteRT, no delegate"}

SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).with_name("bench.schema.json")


@dataclass
class Latency:
    p50_ms: float
    p90_ms: float | None               # None where the tool that timed it prints no such percentile (benchmark_model)
    p99_ms: float | None
    mean_ms: float
    runs: int
    round_p50_ms: list[float]          # each interleaved round's median: the spread over the run


@dataclass
class Ratio:
    """How many times faster than ``against`` (same threads, same run): the median over rounds of
    the ratio of the two rows' round medians, and the lowest and highest of those ratios."""

    against: str
    median: float
    low: float
    high: float


@dataclass
class BenchRow:
    label: str                         # "onnx int8", "torch fp32"
    format: str                        # "onnx", "tflite", "openvino", "torch"
    precision: str                     # "fp32", "int8", or "unknown" for a file without a manifest
    runtime: str
    device: str
    threads: int
    status: str                        # "ok", "failed", "unavailable", "estimated" (a device profile's)
    path: str | None = None            # as given, or relative to the export folder
    sha256: str | None = None
    bytes: int | None = None
    batch: int | None = None
    inputs: list[str] = field(default_factory=list)   # "1x3x224x224 float32", as fed
    error: str | None = None
    precision_ran: str | None = None
    load_s: float | None = None
    first_call_ms: float | None = None
    latency: Latency | None = None
    throughput_per_s: float | None = None   # samples per second, one stream
    peak_rss_growth_bytes: int | None = None
    metric: float | None = None        # the file's task metric on held-out data, from its manifest
    on_pareto_front: bool | None = None
    vs_fp32: Ratio | None = None
    vs_torch: Ratio | None = None
    detail: dict[str, typing.Any] = field(default_factory=dict)
    # A device profile's estimate (devices/estimate.py), never a measurement: the estimate, the
    # plain roofline beside it, and which published figures the runtime's efficiency was fitted on.
    estimated_ms: float | None = None
    roofline_ms: float | None = None
    estimate_basis: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def key(self) -> str:
        return f"{self.label} · {RUNTIME_LABELS.get(self.runtime, self.runtime)}"


@dataclass
class BenchReport:
    sources: list[str]
    model: str | None
    metric_name: str | None
    higher_is_better: bool | None
    host: Host
    versions: dict[str, str | None]
    devices: list[str]
    threads: list[int]
    rounds: int
    seconds_per_row: float
    seconds: float
    rows: list[BenchRow]
    schema_version: int = SCHEMA_VERSION

    @property
    def ok(self) -> bool:
        return all(r.status != "failed" for r in self.rows)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1) + "\n"

    @classmethod
    def from_dict(cls, data, source: str = "bench.json") -> "BenchReport":
        return typed.from_versioned(cls, data, SCHEMA_VERSION, source, "bench", "run edgezoo bench again")


def json_schema() -> dict:
    return typed.json_schema(BenchReport, SCHEMA_VERSION, "edgezoo bench results", f"edgezoo-bench-{SCHEMA_VERSION}")


def render_schema() -> str:
    return json.dumps(json_schema(), indent=1) + "\n"


def read_bench(path: str | Path) -> BenchReport:
    return BenchReport.from_dict(typed.read_json(path, "bench results", "run edgezoo bench again"), repr(str(path)))
