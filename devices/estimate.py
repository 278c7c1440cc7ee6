"""Latency on a device edgezoo cannot reach, estimated from its profile (devices/profiles/*.toml).

Per operator of the exported graph: its multiply-accumulates (MACs) against the profile's peak,
and the bytes it moves (weights, inputs, outputs) against the memory bandwidth. A runtime reaches
neither peak, so the two times are scaled by efficiencies fitted, per device, runtime and precision,
on the published latencies of OTHER models (the profile's ``calibration`` points, never MobileNetV2,
which the profile's ``check`` points hold as a prediction to compare with):

    t(1 thread) = u_compute * MACs / peak_core + u_memory * bytes / bandwidth
    t(n threads) = t(1) * (serial + (1 - serial) / min(n, cores))

``u`` are fitted by non-negative least squares on relative error; with a single calibration point
of a precision, that precision keeps the fp32 fit's shape and only its scale is fitted. The plain
roofline (every operator at the cores' full peak or the full bandwidth, whichever binds) is given
beside it as the baseline.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import BadInput, did_you_mean

PROFILES_DIR = Path(__file__).with_name("profiles")
REFERENCE_COSTS = PROFILES_DIR / "reference_costs.json"
BYTES_PER_ELEMENT = {"fp32": 4, "fp16": 2, "int8": 1}


@dataclass(frozen=True)
class OpCost:
    kind: str        # "conv" (dense convolution or matrix product), "depthwise", "other"
    macs: int
    bytes: int


@dataclass
class Costs:
    macs: float
    bytes: float

    @classmethod
    def of(cls, ops: list[OpCost]) -> "Costs":
        return cls(float(sum(o.macs for o in ops)), float(sum(o.bytes for o in ops)))


@dataclass
class Estimate:
    device: str
    runtime: str
    precision: str
    threads: int
    latency_ms: float | None
    roofline_ms: float
    basis: str                  # what it was fitted on, or why there is no estimate


# ---- profiles ------------------------------------------------------------------------------------

def profile_names() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.toml"))


def load_profile(name: str) -> dict:
    path = PROFILES_DIR / f"{name}.toml"
    if name not in profile_names():
        raise BadInput(f"no device profile {name!r}: {did_you_mean(name, profile_names())}edgezoo has {', '.join(profile_names())} (devices/profiles/)")
    with open(path, "rb") as f:
        return tomllib.load(f)


# ---- graph costs ---------------------------------------------------------------------------------

def graph_costs(path: str | Path, precision: str) -> list[OpCost]:
    """The operators of an .onnx or .tflite file with their MACs and bytes moved (activations and
    weights at ``precision``'s width for ONNX, whose int8 graphs keep float tensors between their
    quantize and dequantize nodes; a .tflite file's own tensor types)."""
    path = Path(path)
    if path.suffix == ".onnx":
        return _onnx_costs(path, BYTES_PER_ELEMENT[precision])
    if path.suffix == ".tflite":
        return _tflite_costs(path)
    raise BadInput(f"{str(path)!r}: latency estimates read .onnx and .tflite files")


def _onnx_costs(path: Path, width: int) -> list[OpCost]:
    model = _with_shapes(path)
    g = model.graph
    shapes = {}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        dims = [d.dim_value if d.HasField("dim_value") else 1 for d in vi.type.tensor_type.shape.dim]
        shapes[vi.name] = dims
    weights = {t.name: list(t.dims) for t in g.initializer}
    shapes.update(weights)
    # Weights reached through a DequantizeLinear (QDQ int8) count as the quantized tensor's.
    for node in g.node:
        if node.op_type == "DequantizeLinear" and node.input[0] in weights:
            shapes[node.output[0]] = weights[node.input[0]]
    ops = []
    for node in g.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear", "Constant", "Shape", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"):
            continue
        out = shapes.get(node.output[0])
        if out is None:
            continue
        size = lambda name: int(np.prod(shapes.get(name, [0]))) if name else 0  # noqa: E731
        moved = (sum(size(i) for i in node.input) + sum(size(o) for o in node.output)) * width
        macs, kind = 0, "other"
        if node.op_type == "Conv" and node.input[1] in shapes:
            w = shapes[node.input[1]]                       # [cout, cin / groups, kh, kw]
            group = next((a.i for a in node.attribute if a.name == "group"), 1)
            macs = int(np.prod(out)) * int(np.prod(w[1:]))
            kind = "depthwise" if group > 1 and w[1] == 1 else "conv"
        elif node.op_type in ("Gemm", "MatMul") and node.input[0] in shapes:
            a = shapes[node.input[0]]
            macs, kind = int(np.prod(out)) * int(a[-1]), "conv"
        ops.append(OpCost(kind, macs, int(moved)))
    return ops


def _with_shapes(path: Path):
    """The ONNX model with every tensor's shape inferred. ONNX Runtime's symbolic inference follows
    shapes computed in the graph (Shape, Gather, Concat into a Reshape: ShuffleNet's channel
    shuffle), where onnx's own leaves them unknown and the convolutions after them were counted at
    1x1 pixels (ShuffleNetV2 x1.0: 74 M MACs instead of 145 M); onnx's is the fallback for a graph
    the symbolic pass cannot follow."""
    import onnx

    model = onnx.load(str(path))
    try:
        from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

        from ..quiet import quiet_native

        with quiet_native():
            return SymbolicShapeInference.infer_shapes(model, auto_merge=True)
    except Exception:  # noqa: BLE001 - any failure of the symbolic pass falls back to onnx's
        return onnx.shape_inference.infer_shapes(model)


def _tflite_costs(path: Path) -> list[OpCost]:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    tensors = {t["index"]: t for t in interp.get_tensor_details()}

    def nbytes(i):
        t = tensors.get(i)
        return 0 if t is None else int(np.prod(t["shape"])) * np.dtype(t["dtype"]).itemsize

    ops = []
    for op in interp._get_ops_details():
        name, ins, outs = op["op_name"], [i for i in op["inputs"] if i >= 0], list(op["outputs"])
        if name in ("QUANTIZE", "DEQUANTIZE", "RESHAPE", "SQUEEZE"):
            continue
        out = tensors[outs[0]]["shape"] if outs else []
        macs, kind = 0, "other"
        if name == "CONV_2D":
            w = tensors[ins[1]]["shape"]                    # [cout, kh, kw, cin]
            macs, kind = int(np.prod(out)) * int(np.prod(w[1:])), "conv"
        elif name == "DEPTHWISE_CONV_2D":
            w = tensors[ins[1]]["shape"]                    # [1, kh, kw, cout]
            macs, kind = int(np.prod(out)) * int(w[1] * w[2]), "depthwise"
        elif name in ("FULLY_CONNECTED", "BATCH_MATMUL"):
            k = tensors[ins[1]]["shape"][-1] if name == "FULLY_CONNECTED" else tensors[ins[0]]["shape"][-1]
            macs, kind = int(np.prod(out)) * int(k), "conv"
        ops.append(OpCost(kind, macs, sum(nbytes(i) for i in ins) + sum(nbytes(o) for o in outs)))
    return ops


def reference_ops() -> dict[str, dict[str, list[OpCost]]]:
    """{model: {precision: operators}} of the calibration and check architectures
    (devices/reference_models.py), as benchmarks/estimates.py --references measured them."""
    data = json.loads(REFERENCE_COSTS.read_text())
    out = {m: {p: [OpCost(*op) for op in ops] for p, ops in by_precision.items()} for m, by_precision in data["models"].items()}
    for by_precision in out.values():  # fp16 (ncnn's float arithmetic on Armv8.2 cores): fp32's graph at half the bytes
        by_precision.setdefault("fp16", [OpCost(o.kind, o.macs, o.bytes // 2) for o in by_precision["fp32"]])
    return out


def reference_costs() -> dict[str, dict[str, Costs]]:
    return {m: {p: Costs.of(ops) for p, ops in by_precision.items()} for m, by_precision in reference_ops().items()}


# ---- the model -------------------------------------------------------------------------------------

def _terms(profile: dict, precision: str, costs: Costs) -> np.ndarray:
    peak = profile[f"{precision}_gmacs_per_core"] * 1e9
    return np.array([costs.macs / peak, costs.bytes / (profile["memory_gbs"] * 1e9)]) * 1e3   # ms at full efficiency


def _scale(profile: dict, threads: int) -> float:
    s = profile["serial_fraction"]
    return s + (1 - s) / min(threads, profile["cores"])


def _points(profile: dict, runtime: str, precision: str, section: str = "calibration") -> list[dict]:
    return [p for p in profile.get(section, []) if p["runtime"] == runtime and p["precision"] == precision]


def fit(profile: dict, runtime: str, precision: str, points: list[dict] | None = None, refs=None) -> tuple[np.ndarray | None, str]:
    """The efficiencies ``u`` (ms per ms at peak) for one runtime and precision, and what they
    rest on; None and the reason when nothing can be fitted."""
    from scipy.optimize import nnls

    refs = refs or reference_costs()
    points = _points(profile, runtime, precision) if points is None else points
    if not points:
        have = sorted({(p["runtime"], p["precision"]) for p in profile.get("calibration", [])})
        return None, (f"no published {precision} figures for {runtime} on {profile['name']} to calibrate on "
                      f"(it has: {', '.join(f'{r} {p}' for r, p in have) or 'none'})")
    def system(pts):
        rows = np.array([_terms(profile, precision, refs[p["model"]][precision]) * _scale(profile, p["threads"]) for p in pts])
        observed = np.array([p["latency_ms"] for p in pts], dtype=float)
        return rows, observed

    rows, observed = system(points)
    models = sorted({p["model"] for p in points})
    if len(models) >= 2:
        u, _ = nnls(rows / observed[:, None], np.ones(len(points)))   # least squares on relative error
        return u, f"{len(points)} published points ({', '.join(models)})"
    # One model only: keep the fp32 fit's balance of compute and memory, fit its scale.
    if precision != "fp32":
        shape, said = fit(profile, runtime, "fp32", refs=refs)
        if shape is not None:
            k = float(np.mean(observed / (rows @ shape)))
            return shape * k, f"{len(points)} published point ({models[0]}) scaling the fp32 fit: few points"
    u = np.array([float(np.mean(observed / rows.sum(1))), 0.0])
    return u, f"{len(points)} published point ({models[0]}): few points"


def predict(profile: dict, precision: str, costs: Costs, u: np.ndarray, threads: int) -> float:
    return float(_terms(profile, precision, costs) @ u * _scale(profile, threads))


def roofline_ms(profile: dict, precision: str, ops: list[OpCost], threads: int) -> float:
    peak = profile[f"{precision}_gmacs_per_core"] * 1e9 * min(threads, profile["cores"])
    bandwidth = profile["memory_gbs"] * 1e9
    return sum(max(o.macs / peak, o.bytes / bandwidth) for o in ops) * 1e3


def leave_one_out(profile: dict, runtime: str, precision: str) -> list[dict]:
    """Each calibration point predicted by a fit on the others (of the same precision): the
    estimator's error where the answer is known."""
    refs = reference_costs()
    points = _points(profile, runtime, precision)
    out = []
    for i, p in enumerate(points):
        rest = [q for j, q in enumerate(points) if j != i and q["model"] != p["model"]]
        if not rest:
            continue
        u, _ = fit(profile, runtime, precision, rest, refs)
        if u is None:
            continue
        predicted = predict(profile, precision, refs[p["model"]][precision], u, p["threads"])
        out.append({**p, "predicted_ms": predicted, "error": predicted / p["latency_ms"] - 1})
    return out


def estimate(path: str | Path, device: str, runtime: str, precision: str, threads: list[int]) -> list[Estimate]:
    """One estimate per thread count: the file's graph is read and the efficiencies fitted once."""
    profile = load_profile(device)
    if not threads or min(threads) < 1:
        raise BadInput(f"--threads {','.join(map(str, threads)) or '(none)'}: pass counts of at least 1")
    ops = graph_costs(path, precision)
    costs = Costs.of(ops)
    u, basis = fit(profile, runtime, precision)
    return [Estimate(device, runtime, precision, t, None if u is None else predict(profile, precision, costs, u, t),
                     roofline_ms(profile, precision, ops, t), basis) for t in threads]
