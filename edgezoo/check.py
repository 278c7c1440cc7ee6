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
    metric_fn: object = None


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
    return Reference(inputs, outputs, target_arr, n, metric, source, len(outputs[0]), data.metric if data is not None else None)


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
    if w0.shape[1] > 1:
        result["agreement"] = float(np.mean(g0.argmax(1) == w0.argmax(1)))
    if ref.targets is not None:
        result["metric"] = float(ref.metric_fn(got[0], ref.targets))
        result["metric_delta"] = result["metric"] - ref.metric

    tol = spec.tolerance
    if precision == "fp32":
        if result["rel_error"] >= tol.fp32_rel_error:
            result.update(status="failed", error=f"fp32 output differs from torch: relative error {result['rel_error']:.2e} >= {tol.fp32_rel_error:.0e}")
    elif ref.targets is not None:
        if -result["metric_delta"] > tol.int8_metric_drop + 1e-9:
            result.update(status="failed", error=f"int8 {spec.metric_name} {result['metric']:.4f} is {-result['metric_delta'] * 100:.2f} points below torch fp32 {ref.metric:.4f} (bound {tol.int8_metric_drop * 100:.1f})")
    elif cosine < tol.int8_min_cosine:
        result.update(status="failed", error=f"int8 outputs drift from torch: mean cosine {cosine:.4f} < {tol.int8_min_cosine}")
    return result
