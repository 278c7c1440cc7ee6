"""The manifest an export leaves beside its files: typed, versioned, and described by a JSON Schema
made from these types (shipped as ``manifest.schema.json``). Imports no torch: reports and other
tools read manifests without the ML stack."""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path

from . import typed
from .errors import BadInput

SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).with_name("manifest.schema.json")


@dataclass
class FileEntry:
    path: str
    bytes: int
    sha256: str


@dataclass
class ImagePreprocess:
    """How a picture becomes this image input, as data (what a device bundle's `run.py classify`
    and an app on the device do): decode, take ``color``, shrink to ``source_size`` when the
    training data was made at that size, resize (``resize``) to the input's height and width,
    multiply by ``scale``, subtract ``mean`` and divide by ``std`` per channel, lay out as
    ``layout``."""

    layout: str                       # "NCHW" or "NHWC"
    color: str                        # "grayscale" (replicated over the input's channels) or "rgb"
    resize: str                       # "bilinear"
    scale: float                      # pixel value (0-255) times this
    mean: list[float]
    std: list[float]
    source_size: list[int] | None = None   # [height, width] the training images were at before resizing
    foreground: str | None = None          # "bright on dark": invert dark-on-light pictures
    note: str | None = None


@dataclass
class InputEntry:
    name: str
    shape: list[int]
    dtype: str
    # The values the model expects, [low, high) (high exclusive for integers): what seeded test
    # inputs are drawn from when a file is checked away from its data (edgezoo verify).
    value_range: list[float] | None = None
    image: ImagePreprocess | None = None    # an image input's preprocessing, where the task data states it


@dataclass
class Bar:
    value: float
    how: str
    direction: str          # "at least" or "at most"
    met: bool


@dataclass
class Baseline:
    name: str
    metric: float


@dataclass
class RolloutSummary:
    name: str
    summary: str


@dataclass
class Reference:
    """torch fp32 on the held-out split (or sample inputs): what every artifact is held to."""

    framework: str
    metric_name: str | None
    metric: float | None
    eval_samples: int
    eval_source: str
    baseline: Baseline | None = None
    bar: Bar | None = None
    rollout: RolloutSummary | None = None
    latency_ms: float | None = None
    latency_p90_ms: float | None = None
    latency_runs: int | None = None


@dataclass
class ArtifactRollout:
    name: str
    summary: str
    trace_max_abs_diff: float
    trace_match: float


@dataclass
class AccuracyAware:
    """Accuracy-aware int8 (--max-drop) for one int8 artifact: which layers stayed float, and what
    full int8 would have done. Metrics on the selection split; the row's own metric is the test's."""

    max_drop: float
    selection: str                      # what the layers were chosen on
    candidates: int                     # layers full int8 quantized (not listed, 0, when it met the bound)
    kept_float: list[str]               # by the quantizer's names, most recovering first
    torch_metric: float                 # on the selection split
    all_int8_metric: float | None       # on the selection split; None: full int8 could not be made or run
    metric: float | None                # with kept_float in float, on the selection split
    met: bool                           # within max_drop on the selection split
    trials: int                         # int8 files made to decide
    all_int8_latency_ms: float | None = None  # full int8's, measured beside this file's
    # Top-1 metrics: the share of selection predictions full int8 / this file changed from torch's.
    # What a file loses is judged as the larger of its metric's fall and this share.
    all_int8_changed: float | None = None
    changed: float | None = None


@dataclass
class Qat:
    """--qat: the int8 files are the fake-quantized graph of the model fine-tuned under simulated
    int8 (edgezoo.qat), distilled from the trained model, which the fp32 rows and the reference are."""

    epochs: int
    lr: float
    metric_before: float        # the trained model's, held-out test split (torch)
    int8_simulated: float       # the fine-tuned model's with its fake-quant on (torch), same split
    weights: str                # the fine-tuned state_dict (its fake-quant's parameters and input ranges)
    weight_bits: int = 8        # 7 on a host whose int8 sums saturate (x86 without VNNI): weights in [-64, 64]


@dataclass
class Int8Bound:
    """What every int8 artifact of the export is held to: at most ``metric_drop`` of the task
    metric lost against torch (in its units), or without a task metric a mean cosine of its
    outputs to torch's of at least ``min_cosine``; and how the bound was set."""

    metric_drop: float | None
    min_cosine: float | None
    how: str


@dataclass
class Artifact:
    """One file (with its companions) in one format and precision, and its check."""

    format: str
    precision: str                     # "fp32" or "int8"
    status: str                        # "ok" or "failed"
    runtime: str
    stage: str                         # how far it got: "convert", "check", "done"
    path: str | None = None
    bytes: int | None = None
    sha256: str | None = None
    files: list[FileEntry] = field(default_factory=list)
    error: str | None = None
    failure: str | None = None         # edgezoo.check.FailureKind's value
    scheme: str | None = None          # how the converter or quantizer made it
    int8_scheme: str | None = None     # "static" or "weights" (int8 rows)
    int8_fraction: float | None = None
    convert_s: float | None = None
    precision_ran: str | None = None   # what the runtime reports computing in
    runtime_detail: dict[str, typing.Any] = field(default_factory=dict)
    metric: float | None = None
    metric_delta: float | None = None
    agreement: float | None = None
    max_abs_diff: float | None = None
    rel_error: float | None = None
    cosine: float | None = None
    rollout: ArtifactRollout | None = None
    latency_ms: float | None = None
    latency_p90_ms: float | None = None
    latency_runs: int | None = None
    accuracy_aware: AccuracyAware | None = None
    notes: list[str] = field(default_factory=list)   # what the file keeps otherwise than torch (an input's dtype, its names)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass
class Training:
    seconds: float | None
    threads: int | None


@dataclass
class Host:
    machine: str
    system: str
    cpu: str
    cpu_count: int | None


@dataclass
class ModelSource:
    """How to build the exported torch model again (`edgezoo bench` times it as torch eager): its
    builder by name, or a user's PATH.py:Class, the keyword arguments, and the weights file."""

    builder: str
    kwargs: dict[str, typing.Any]
    weights: str
    from_file: bool = False
    architecture: dict[str, typing.Any] | None = None   # a pruned model's (edgezoo.architecture)


@dataclass
class Pruning:
    """A pruned export: the fraction of channels removed, the fine-tuning, and what it changed
    (MACs and parameters at the export's input shape; the held-out test metric in torch)."""

    ratio: float
    finetune_epochs: int
    macs_before: int
    macs_after: int
    params_before: int
    params_after: int
    metric_before: float
    metric_after: float
    modules_changed: int


@dataclass
class Manifest:
    model: str
    description: str
    task: str
    dataset: str
    weights: str
    weights_sha256: str | None
    inputs: list[InputEntry]
    reference: Reference
    training: Training | None
    calibration: str | None
    int8_scheme: str | None
    int8_scheme_by_format: dict[str, str] | None
    threads: int
    host: Host
    versions: dict[str, str | None]
    seconds: float
    artifacts: list[Artifact]
    log: FileEntry | None = None       # export.log, when a step failed: edgezoo's to replace next time
    source: ModelSource | None = None  # None for initial weights, which cannot be rebuilt
    pruning: Pruning | None = None     # --prune: what was removed, and what it cost
    int8_bound: Int8Bound | None = None  # with --int8: what the int8 rows were held to
    qat: Qat | None = None             # --qat: the quantization-aware fine-tuning the int8 files come from
    labels: list[str] | None = None    # a classifier's class names, by output index, where the task data has them
    schema_version: int = SCHEMA_VERSION

    def artifact(self, fmt: str, precision: str) -> Artifact | None:
        return next((a for a in self.artifacts if (a.format, a.precision) == (fmt, precision)), None)

    @property
    def ok(self) -> bool:
        return all(a.ok for a in self.artifacts)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: dict, source: str = "manifest") -> "Manifest":
        """A manifest of this schema version; another version, or what is not a manifest, is
        refused in one line."""
        if not isinstance(data, dict):
            raise BadInput(f"{source} is not an edgezoo manifest (a JSON object is expected): export again to write one")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            said = "no schema version (written before manifests were versioned)" if version is None else f"schema version {version!r}"
            raise BadInput(f"{source} has {said}; this edgezoo reads version {SCHEMA_VERSION}: export again with this edgezoo")
        try:
            return typed.build(cls, data)
        except (TypeError, ValueError, KeyError) as exc:
            raise BadInput(f"{source} does not follow manifest schema {SCHEMA_VERSION} ({exc}): export again to rewrite it") from None


def read_manifest(path: str | Path) -> Manifest:
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"manifest {str(path)!r} cannot be read ({getattr(exc, 'strerror', None) or exc}): pass an export folder's manifest.json") from None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise BadInput(f"manifest {str(path)!r} is not JSON ({str(exc)[:120]}): pass an export folder's manifest.json") from None
    return Manifest.from_dict(data, f"manifest {str(path)!r}")


def artifact_from(row: dict) -> Artifact:
    """A row the pipeline built up field by field, checked against the types."""
    return typed.build(Artifact, row)


def json_schema() -> dict:
    """The JSON Schema (draft 2020-12) of Manifest, made from the dataclasses above."""
    return typed.json_schema(Manifest, SCHEMA_VERSION, "edgezoo export manifest", f"edgezoo-manifest-{SCHEMA_VERSION}")


def render_schema() -> str:
    return json.dumps(json_schema(), indent=1) + "\n"
