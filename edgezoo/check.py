"""The checker: run an artifact over held-out data (or sample inputs) and hold it to the model
card's bounds against the torch reference computed once per export."""

from __future__ import annotations

from dataclasses import dataclass

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


def _cat(batches: list[list[np.ndarray]], n: int) -> list[np.ndarray]:
    """Concatenate per-batch outputs along the batch axis and drop padding."""
    return [np.concatenate([b[k] for b in batches])[:n] for k in range(len(batches[0]))]


def reference_outputs(model: torch.nn.Module, spec: ModelSpec, data, n_samples: int = 32) -> Reference:
    batch = spec.inputs[0].shape[0]
    inputs: list[tuple[np.ndarray, ...]] = []
    targets = []
    if data is not None:
        for x, y in data.batches("test", batch):
            if x[0].shape[0] < batch:  # pad the last batch to the exported (fixed) batch size
                pad = batch - x[0].shape[0]
                x = tuple(torch.cat([t, t[-1:].expand(pad, *t.shape[1:])]) for t in x)
            inputs.append(tuple(t.numpy() for t in x))
            targets.append(y.numpy())
        n = data.size("test")
        source = f"{data.name} test split, {n} samples"
    else:
        inputs = [tuple(t.numpy() for t in spec.example_inputs(seed=s)) for s in range(n_samples)]
        n = n_samples * batch
        source = f"{n_samples} random input batches"
    outputs = []
    with torch.inference_mode():
        for x in inputs:
            outs = output_tuple(model(*[torch.from_numpy(a) for a in x]))
            outputs.append([o.numpy().copy() for o in outs])
    target_arr = np.concatenate(targets)[:n] if targets else None
    metric = data.metric(_cat(outputs, n)[0], target_arr) if data is not None else None
    rollout = None
    if data is not None and data.rollout is not None:
        from .devices.runners import torch_runner

        rollout = data.rollout.run(torch_runner(model))
        if data.rollout.sets_metric:
            metric = rollout.value
    return Reference(inputs, outputs, target_arr, n, metric, source, len(outputs[0]), data, rollout)


def check_artifact(runner: Runner, ref: Reference, precision: str, spec: ModelSpec) -> dict:
    """Metric, agreement and error against torch, and the verdict under the card's tolerance."""
    got_batches = [[np.asarray(o) for o in runner(x)] for x in ref.inputs]
    got = _cat(got_batches, ref.n_samples)
    want = _cat(ref.outputs, ref.n_samples)
    if len(got) != len(want) or any(g.shape != w.shape for g, w in zip(got, want)):
        return {"status": "failed", "error": f"output shapes {[g.shape for g in got]} differ from torch's {[w.shape for w in want]}"}
    diff = max(float(np.max(np.abs(g.astype(np.float64) - w))) for g, w in zip(got, want))
    scale = max(float(np.max(np.abs(w))) for w in want) or 1.0
    g0, w0 = got[0].reshape(len(got[0]), -1).astype(np.float64), want[0].reshape(len(want[0]), -1).astype(np.float64)
    cosine = float(np.mean(np.sum(g0 * w0, 1) / (np.linalg.norm(g0, axis=1) * np.linalg.norm(w0, axis=1) + 1e-12)))
    result = {"max_abs_diff": diff, "rel_error": diff / scale, "cosine": cosine, "status": "ok", "error": None}
    data, tol = ref.data, spec.tolerance
    if (data.measure.class_scores if data is not None else w0.shape[1] > 1):
        # Class scores on the last axis (per sample, per node, per position).
        result["agreement"] = float(np.mean(got[0].argmax(-1) == want[0].argmax(-1)))
    if data is not None and ref.targets is not None and data.scored_by_outputs:
        result["metric"] = float(data.metric(got[0], ref.targets))
    trace_error = None
    if data is not None and data.rollout is not None:
        loop = data.rollout
        rolled = loop.run(runner)
        trace_diff = float(np.max(np.abs(rolled.trace.astype(np.float64) - ref.rollout.trace))) if rolled.trace.shape == ref.rollout.trace.shape else float("inf")
        result["rollout"] = {"name": loop.name, "summary": rolled.summary, "trace_max_abs_diff": trace_diff,
                             "trace_match": float(np.mean(rolled.trace == ref.rollout.trace)) if trace_diff != float("inf") else 0.0}
        if loop.sets_metric:
            result["metric"] = rolled.value
        if precision == "fp32" and loop.fp32_trace_atol is not None and trace_diff > loop.fp32_trace_atol:
            trace_error = f"{loop.name} through the fp32 artifact differs from torch's: max |diff| {trace_diff:.3g} > {loop.fp32_trace_atol:g} ({rolled.summary})"
    if result.get("metric") is not None and ref.metric is not None:
        result["metric_delta"] = result["metric"] - ref.metric

    measure = data.measure if data is not None else None
    if precision == "fp32" and result["rel_error"] >= tol.fp32_rel_error:
        result.update(status="failed", error=f"fp32 output differs from torch: relative error {result['rel_error']:.2e} >= {tol.fp32_rel_error:.0e}")
    elif trace_error:
        result.update(status="failed", error=trace_error)
    elif precision == "int8" and result.get("metric_delta") is not None:
        worse = measure.worse_by(result["metric"], ref.metric)
        if worse > tol.int8_metric_drop + 1e-9:
            result.update(status="failed", error=f"int8 {measure.name} {result['metric']:.4f} is {measure.say(worse)} worse than torch fp32 {ref.metric:.4f} (bound {measure.say(tol.int8_metric_drop)})")
    elif precision == "int8" and measure is None and cosine < tol.int8_min_cosine:
        result.update(status="failed", error=f"int8 outputs drift from torch: mean cosine {cosine:.4f} < {tol.int8_min_cosine}")
    bar = spec.bar(data) if tol.artifacts_clear_bar else None
    if result["status"] == "ok" and bar is not None and result.get("metric") is not None and not measure.clears(result["metric"], bar[0]):
        result.update(status="failed", error=f"{measure.name} {result['metric']:.4f} misses the bar {bar[0]:.4g} ({bar[1]}), which every artifact must clear")
    return result
