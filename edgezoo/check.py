"""The checker: run an artifact over held-out data (or sample inputs) and hold it to the model
card's bounds against the torch reference computed once per export."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np
import torch

from .devices.runners import Runner, output_tuple
from .registry import ModelSpec


@dataclass
class Reference:
    inputs: list[tuple[np.ndarray, ...]]     # model-shaped input tuples (batch as exported)
    outputs: list[list[np.ndarray]]          # torch outputs per input tuple
    targets: np.ndarray | None               # task targets, one per real sample
    n_samples: int                           # real samples (the last batch may be padded)
    metric: float | None
    source: str
    n_outputs: int
    data: object = None                      # the TaskData, when there is one
    rollout: object = None                   # torch's RolloutResult, for closed-loop tasks
    rows: int | None = None                  # rows of the concatenated outputs that are samples (None: all)


def _cat(batches: list[list[np.ndarray]], n: int | None) -> list[np.ndarray]:
    """Concatenate per-batch outputs along the batch axis and drop padding (None: none to drop)."""
    return [np.concatenate([b[k] for b in batches])[:n] for k in range(len(batches[0]))]


def fixed_batch(inputs: tuple[torch.Tensor, ...], batch: int) -> tuple[torch.Tensor, ...]:
    """A split's last, smaller batch padded (with its last sample) to the exported fixed batch size."""
    n = inputs[0].shape[0]
    return inputs if n >= batch else tuple(torch.cat([t, t[-1:].expand(batch - n, *t.shape[1:])]) for t in inputs)


def reference_outputs(model: torch.nn.Module, spec: ModelSpec, data, n_samples: int = 32, samples=None) -> Reference:
    """torch's outputs on the task's test split (``data``), or, without task data, on the test
    split of ``samples`` (a user's --data without --metric: parity on their inputs), else on
    ``n_samples`` random input batches."""
    batch = spec.inputs[0].shape[0]
    inputs: list[tuple[np.ndarray, ...]] = []
    targets = []
    keep = None
    for source_data in (data, samples):
        if source_data is None:
            continue
        per_call = source_data.per_call(batch)
        for x, y in source_data.batches("test", per_call):
            x = fixed_batch(x, batch) if source_data.samples_per_call is None else x
            inputs.append(tuple(t.numpy() for t in x))
            targets.append(y.numpy())
        n = source_data.size("test")
        keep = source_data.rows_kept(n)
        source = f"{source_data.name} test split, {n} samples" + ("" if data is not None else " (no --metric: parity only)")
        break
    else:
        inputs = [tuple(t.numpy() for t in spec.example_inputs(seed=s)) for s in range(n_samples)]
        n, keep = n_samples * batch, None  # no batch is padded
        source = f"{n_samples} random input batches"
        targets = []
    outputs = []
    with torch.inference_mode():
        for x in inputs:
            outs = output_tuple(model(*[torch.from_numpy(a) for a in x]))
            outputs.append([o.numpy().copy() for o in outs])
    target_arr = np.concatenate(targets)[:n] if targets and data is not None else None
    metric = data.metric(_cat(outputs, keep)[0], target_arr) if data is not None else None
    rollout = None
    if data is not None and data.rollout is not None:
        from .devices.runners import torch_runner

        rollout = data.rollout.run(torch_runner(model))
        if data.rollout.sets_metric:
            metric = rollout.value
    return Reference(inputs, outputs, target_arr, n, metric, source, len(outputs[0]), data, rollout, keep)


class FailureKind(str, Enum):
    """Why an artifact failed its check: typed, so reports and tests need not parse messages."""

    CONVERT = "convert"              # the converter or quantizer failed: no file
    CRASH = "crash"                  # the runtime died (a signal) or hung on the file, in a child process
    RUN = "run"                      # the runtime raised loading or running the file
    SHAPES = "shapes"                # outputs of other shapes than torch's
    NONFINITE = "nonfinite"          # NaN or inf in the outputs
    FP32_PARITY = "fp32_parity"      # fp32 outputs off torch's beyond the card's relative error
    TRACE = "trace"                  # a closed loop (text, samples) through fp32 drifts from torch's
    INT8_METRIC = "int8_metric"      # int8 loses more of the task metric than the card allows
    INT8_COSINE = "int8_cosine"      # no task metric: int8 outputs drift from torch's
    INT8_FRACTION = "int8_fraction"  # an "int8" file that stores most of its constants in float
    BAR = "bar"                      # the artifact misses the bar every artifact must clear


@dataclass(frozen=True)
class Failure:
    kind: FailureKind
    message: str


@dataclass
class Measurement:
    """What one artifact does on the reference's inputs, against torch: no verdict here."""

    output_shapes: list[tuple[int, ...]]
    shapes_match: bool
    nonfinite: int = 0                  # NaN or inf values among the outputs
    max_abs_diff: float | None = None
    rel_error: float | None = None
    cosine: float | None = None
    agreement: float | None = None
    metric: float | None = None
    metric_delta: float | None = None
    rollout: dict | None = None         # name, summary, trace_max_abs_diff, trace_match

    def row_fields(self) -> dict:
        return {k: getattr(self, k) for k in ("max_abs_diff", "rel_error", "cosine", "agreement", "metric", "metric_delta", "rollout") if getattr(self, k) is not None}


def measure_artifact(runner: Runner, ref: Reference) -> Measurement:
    """Runs the artifact over the reference's inputs (and its closed loop): error, agreement and
    task metric against torch."""
    got = _cat([[np.asarray(o) for o in runner(x)] for x in ref.inputs], ref.rows)
    want = _cat(ref.outputs, ref.rows)
    shapes = [tuple(g.shape) for g in got]
    if len(got) != len(want) or any(g.shape != w.shape for g, w in zip(got, want)):
        return Measurement(shapes, shapes_match=False)
    nonfinite = _nonfinite(got)
    diff = max(float(np.max(np.abs(g.astype(np.float64) - w))) for g, w in zip(got, want))
    scale = max(float(np.max(np.abs(w))) for w in want) or 1.0
    g0, w0 = got[0].reshape(len(got[0]), -1).astype(np.float64), want[0].reshape(len(want[0]), -1).astype(np.float64)
    cosine = float(np.mean(np.sum(g0 * w0, 1) / (np.linalg.norm(g0, axis=1) * np.linalg.norm(w0, axis=1) + 1e-12)))
    m = Measurement(shapes, True, nonfinite, diff, diff / scale, cosine)
    data = ref.data
    if (data.measure.class_scores if data is not None else w0.shape[1] > 1):
        # Class scores on the last axis (per sample, per node, per position).
        m.agreement = float(np.mean(got[0].argmax(-1) == want[0].argmax(-1)))
    if data is not None and ref.targets is not None and data.scored_by_outputs:
        m.metric = float(data.metric(got[0], ref.targets))
    if data is not None and data.rollout is not None:
        rolled = data.rollout.run(runner)
        same_shape = rolled.trace.shape == ref.rollout.trace.shape
        trace_diff = float(np.max(np.abs(rolled.trace.astype(np.float64) - ref.rollout.trace))) if same_shape else float("inf")
        m.rollout = {"name": data.rollout.name, "summary": rolled.summary, "trace_max_abs_diff": trace_diff,
                     "trace_match": float(np.mean(rolled.trace == ref.rollout.trace)) if same_shape else 0.0}
        if data.rollout.sets_metric:
            m.metric = rolled.value
    if m.metric is not None and ref.metric is not None:
        m.metric_delta = m.metric - ref.metric
    return m


def judge_artifact(m: Measurement, ref: Reference, precision: str, spec: ModelSpec, int8_fraction: float | None = None) -> Failure | None:
    """The verdict on a measurement under the model card's tolerance: None, or the first failure."""
    data, tol = ref.data, spec.tolerance
    measure = data.measure if data is not None else None
    if not m.shapes_match:
        return Failure(FailureKind.SHAPES, f"output shapes {m.output_shapes} differ from torch's {[w.shape for w in ref.outputs[0]]}")
    if m.nonfinite:
        # NaN compares false: without this, every bound below would pass.
        return Failure(FailureKind.NONFINITE, f"{m.nonfinite} of the artifact's output values are NaN or inf (torch's are all finite)")
    if precision == "fp32" and not m.rel_error < tol.fp32_rel_error:
        return Failure(FailureKind.FP32_PARITY, f"fp32 output differs from torch: relative error {m.rel_error:.2e} >= {tol.fp32_rel_error:.0e}")
    loop = data.rollout if data is not None else None
    if precision == "fp32" and loop is not None and loop.fp32_trace_atol is not None and not m.rollout["trace_max_abs_diff"] <= loop.fp32_trace_atol:
        return Failure(FailureKind.TRACE, f"{loop.name} through the fp32 artifact differs from torch's: max |diff| {m.rollout['trace_max_abs_diff']:.3g} > {loop.fp32_trace_atol:g} ({m.rollout['summary']})")
    if precision == "int8" and m.metric_delta is not None:
        worse = measure.worse_by(m.metric, ref.metric)
        if not worse <= tol.int8_metric_drop + 1e-9:
            return Failure(FailureKind.INT8_METRIC, f"int8 {measure.name} {m.metric:.4f} is {measure.say(worse)} worse than torch fp32 {ref.metric:.4f} (bound {measure.say(tol.int8_metric_drop)})")
    elif precision == "int8" and measure is None and not m.cosine >= tol.int8_min_cosine:
        return Failure(FailureKind.INT8_COSINE, f"int8 outputs drift from torch: mean cosine {m.cosine:.4f} < {tol.int8_min_cosine}")
    if precision == "int8" and int8_fraction is not None and int8_fraction < tol.int8_min_fraction:
        return Failure(FailureKind.INT8_FRACTION, f"only {int8_fraction:.0%} of the int8 artifact's constants are 8-bit (bound {tol.int8_min_fraction:.0%}): the quantizer left it mostly float; "
                                                           "--int8-scheme weights quantizes embedding tables and recurrent weights")
    bar = spec.bar(data) if tol.artifacts_clear_bar else None
    if bar is not None and m.metric is not None and not measure.clears(m.metric, bar[0]):
        return Failure(FailureKind.BAR, f"{measure.name} {m.metric:.4f} misses the bar {bar[0]:.4g} ({bar[1]}), which every artifact must clear")
    return None


def _nonfinite(arrays) -> int:
    """NaN and inf values among the float arrays."""
    return sum(int(np.size(a) - np.count_nonzero(np.isfinite(a))) for a in arrays if np.issubdtype(a.dtype, np.floating))


def nonfinite_reference(ref: Reference) -> str | None:
    """Where torch's own outputs hold NaN or inf (the weights, not an exporter, are at fault)."""
    for i, outputs in enumerate(ref.outputs):
        bad = _nonfinite(outputs)
        if bad:
            return f"{bad} NaN or inf values in torch's outputs for input batch {i}"
    if ref.metric is not None and not np.isfinite(ref.metric):
        return f"torch's {ref.data.metric_name} is {ref.metric}"
    return None
