"""Runs an .onnx or .tflite file with nothing but numpy and the device's runtime (onnxruntime, or
ai-edge-litert / tflite-runtime), as an app on the device feeds it: the code that runs on an ARM
board or in an emulated aarch64 Python, and the conversions the host's runners share with it.

This file imports nothing from edgezoo, so it can be copied next to a model and run on its own:

    python portable.py run JOB.json    # the jobs `edgezoo verify` hands an emulated aarch64 Python
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time

import numpy as np

_INTEGER = ("int8", "uint8", "int16")


def quantize(x: np.ndarray, dtype, scale: float, zero_point: int) -> np.ndarray:
    """A float array as a quantized tensor takes it (round to nearest, clip to the type's range);
    unquantized tensors get a plain cast."""
    dtype = np.dtype(dtype)
    if dtype.name in _INTEGER and scale:
        info = np.iinfo(dtype)
        return np.clip(np.round(np.asarray(x, np.float32) / scale) + zero_point, info.min, info.max).astype(dtype)
    return np.asarray(x, dtype=dtype)


def dequantize(y: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    if y.dtype.name in _INTEGER and scale:
        return (y.astype(np.float32) - zero_point) * np.float32(scale)
    return y


ONNX_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64", "tensor(int64)": "int64",
               "tensor(int32)": "int32", "tensor(int8)": "int8", "tensor(uint8)": "uint8", "tensor(bool)": "bool"}


def is_quantized(detail: dict) -> bool:
    return np.dtype(detail["dtype"]).name in _INTEGER and bool(detail["quantization"][0])


def seeded_inputs(declared: list, seed: int = 0) -> list[np.ndarray]:
    """One set of inputs for ``declared`` [(name, shape, dtype[, value_range])]: floats uniform in
    the value range (standard normal without one), integers in [low, high) (zero without one: an
    index every embedding and gather accepts), booleans false. The same seed, the same arrays."""
    rng = np.random.default_rng(seed)
    feed = []
    for name, shape, dtype, *rest in declared:
        span = rest[0] if rest else None
        kind = np.dtype(dtype).kind
        if kind == "f":
            x = rng.uniform(span[0], span[1], shape) if span else rng.standard_normal(shape)
        elif kind in "iu" and span:
            x = rng.integers(int(span[0]), int(span[1]), shape)
        else:
            x = np.zeros(shape)
        feed.append(x.astype(dtype))
    return feed


class Model:
    """One file in one runtime. ``run(inputs)`` takes arrays in the model's input order (floats
    for a full-integer TFLite input, quantized here) and returns its outputs, dequantized.
    ``output_units``: each output's quantization step where the file stores it quantized, else
    None (what "within one unit" means for that output)."""

    def __init__(self, path: str, runtime: str, threads: int = 1):
        self.path, self.runtime = path, runtime
        if runtime == "onnxruntime":
            self._init_onnxruntime(threads)
        elif runtime in ("litert", "litert-ref"):
            self._init_litert(threads, delegates=runtime == "litert")
        else:
            raise ValueError(f"unknown runtime {runtime!r}: onnxruntime, litert or litert-ref")

    def _init_onnxruntime(self, threads: int) -> None:
        sess = ort_session(self.path, threads)
        names = [i.name for i in sess.get_inputs()]
        self.input_names = names
        self.inputs = [(i.name, [d if isinstance(d, int) and d >= 0 else None for d in i.shape], ONNX_TYPES.get(i.type, "float32"))
                       for i in sess.get_inputs()]
        self.output_units = [None] * len(sess.get_outputs())
        self.quantization = {"inputs": [None] * len(names), "outputs": list(self.output_units)}
        self.run = lambda inputs: sess.run(None, dict(zip(names, inputs)))

    def _init_litert(self, threads: int, delegates: bool) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter, OpResolverType
        except ImportError:  # a board with the older tflite-runtime wheel
            from tflite_runtime.interpreter import Interpreter, OpResolverType

        resolver = OpResolverType.AUTO if delegates else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        interp = Interpreter(model_path=self.path, num_threads=threads, experimental_op_resolver_type=resolver)
        runner = interp.get_signature_runner()
        ins, outs = runner.get_input_details(), runner.get_output_details()
        ins = in_order(ins)
        self.input_names = list(ins)
        self.inputs = [(n, [int(x) if x >= 0 else None for x in d.get("shape_signature", d["shape"])],
                        "float32" if is_quantized(d) else np.dtype(d["dtype"]).name) for n, d in ins.items()]
        self.output_units = [float(d["quantization"][0]) if is_quantized(d) else None for d in outs.values()]
        # What an app on the device feeds and reads: each quantized tensor's dtype, scale and zero point.
        q = lambda d: {"dtype": np.dtype(d["dtype"]).name, "scale": float(d["quantization"][0]), "zero_point": int(d["quantization"][1])} \
            if is_quantized(d) else None
        self.quantization = {"inputs": [q(d) for d in ins.values()], "outputs": [q(d) for d in outs.values()]}

        def run(inputs):
            feed = {n: quantize(x, ins[n]["dtype"], *ins[n]["quantization"]) for n, x in zip(self.input_names, inputs)}
            out = runner(**feed)
            return [dequantize(out[k], *outs[k]["quantization"]) for k in outs]

        self.run = run


def shared_cpu() -> bool:
    """EDGEZOO_SHARED_CPU set: the runtimes' idle threads sleep instead of spinning (edgezoo/__init__.py)."""
    return os.environ.get("EDGEZOO_SHARED_CPU", "") not in ("", "0")


def ort_options(threads: int):
    """ONNX Runtime's session options for one model run by itself: ``threads`` intra-op threads,
    no inter-op pool, every graph optimization, and no spinning between calls on a shared CPU."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if shared_cpu():
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


#: Set in the metadata of edgezoo's int8-weights ONNX files: their int8 weights sit behind
#: DequantizeLinear nodes, which ONNX Runtime folds into float weights once, at load, only when told
#: to (``session.disable_quant_qdq``, for files with no quantized activations); otherwise it
#: dequantizes every weight on every call (measured: the zoo's LSTM 5x and word2vec 14x slower than
#: fp32; folded, as fast as fp32, with the same outputs).
INT8_WEIGHTS_KEY = "edgezoo.int8_weights"


def ort_session(path: str, threads: int, providers=None):
    """An ONNX Runtime session with :func:`ort_options`; an int8-weights file (INT8_WEIGHTS_KEY in
    its metadata, read from a first session) is opened again with its weights folded at load."""
    import onnxruntime as ort

    providers = list(providers or ["CPUExecutionProvider"])
    sess = ort.InferenceSession(str(path), ort_options(threads), providers=providers)
    if sess.get_modelmeta().custom_metadata_map.get(INT8_WEIGHTS_KEY):
        opts = ort_options(threads)
        opts.add_session_config_entry("session.disable_quant_qdq", "1")
        sess = ort.InferenceSession(str(path), opts, providers=providers)
    return sess


def in_order(details: dict) -> dict:
    """A TFLite signature's inputs in the model's argument order. The signature lists them by name
    (alphabetically: args_10 before args_2, or a model's own names), its tensors' indices keep
    the order the converter was given them in."""
    return dict(sorted(details.items(), key=lambda item: item[1]["index"]))


UNIT_BOUND, REL_BOUND = 1.0, 1e-4   # within one quantization step; 1e-4 of the largest float output


def compare(expected: list, got: list, units: list) -> dict:
    """How far ``got`` is from ``expected``, output by output: in quantization steps where the
    output is stored quantized (``units``: its step, else None), else relative to the largest
    expected value. ``ok``: within one step and 1e-4 relative (NaN where NaN was expected counts
    as equal). Also the largest absolute difference, and which kinds of output there were
    (``quantized``, ``float``), so a report can say which bound applied. The one comparison of
    every check: a bundle's on the device, the MCU's against LiteRT, ``edgezoo verify``'s."""
    worst_units = worst_rel = worst_abs = 0.0
    if len(expected) != len(got):
        return {"ok": False, "why": f"{len(got)} outputs, expected {len(expected)}"}
    for k, (a, b) in enumerate(zip(expected, got)):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        if a.shape != b.shape:
            return {"ok": False, "why": f"output {k}: shape {list(b.shape)}, expected {list(a.shape)}"}
        same = (a == b) | (np.isnan(a) & np.isnan(b))
        d = float(np.nan_to_num(np.where(same, 0.0, np.abs(a - b)), nan=np.inf).max()) if a.size else 0.0
        worst_abs = max(worst_abs, d)
        if units[k]:
            worst_units = max(worst_units, d / units[k])
        else:
            scale = float(np.nan_to_num(np.abs(a), nan=0.0, posinf=0.0, neginf=0.0).max()) if a.size else 0.0
            worst_rel = max(worst_rel, d / scale if scale > 0 else (0.0 if d == 0 else float("inf")))
    ok = worst_units <= UNIT_BOUND + 1e-6 and worst_rel <= REL_BOUND
    return {"ok": ok, "max_units": worst_units, "max_rel": worst_rel, "max_abs": worst_abs,
            "quantized": any(bool(u) for u in units[:len(expected)]), "float": any(not u for u in units[:len(expected)])}


def runtime_versions() -> dict:
    found = {"python": platform.python_version(), "numpy": np.__version__}
    for module, name in (("onnxruntime", "onnxruntime"), ("ai_edge_litert", "ai-edge-litert"), ("tflite_runtime", "tflite-runtime")):
        try:
            found[name] = __import__(module).__version__
        except (ImportError, AttributeError):
            pass
    return found


def fill_dynamic(declared: list, shapes: list | None) -> list:
    """Dynamic dimensions (None) taken from ``shapes``, one shape per input, in input order."""
    filled, shapes = [], list(shapes or [])
    for i, (name, shape, dtype, *rest) in enumerate(declared):
        if any(d is None for d in shape):
            if i >= len(shapes):
                said = "x".join("?" if d is None else str(d) for d in shape)
                raise ValueError(f"input {name!r} has a dynamic shape {said}: pass --input-shape for it (once per input, in order)")
            shape = shapes[i]
        filled.append((name, list(shape), dtype, *rest))
    return filled


def run_job(job_path: str) -> None:
    """Each item: load one file in one runtime and run it on ``samples`` sets of inputs, read from
    ``feeds`` (an .npz of ``s{sample}_i{input}``) or, without one, seeded from the declared inputs
    (the item's ``inputs``, else the file's own, dynamic dimensions from ``shapes``). Inputs and
    outputs (``s{sample}_o{output}``) go to ``out``. One JSON line per item on stdout, flushed, so
    that the caller knows how far a run got if the process dies."""
    with open(job_path) as f:
        job = json.load(f)
    print(json.dumps({"started": True, "machine": platform.machine(), "versions": runtime_versions()}), flush=True)
    for item in job["items"]:
        said = {"id": item["id"]}
        try:
            started = time.perf_counter()
            model = Model(item["path"], item["runtime"], job.get("threads", 1))
            said["load_s"] = round(time.perf_counter() - started, 3)
            if item.get("feeds"):
                with np.load(item["feeds"]) as stored:
                    feeds = {k: stored[k] for k in stored.files}
            else:
                declared = fill_dynamic(item.get("inputs") or model.inputs, item.get("shapes"))
                feeds = {f"s{s}_i{i}": x for s in range(item["samples"]) for i, x in enumerate(seeded_inputs(declared, seed=s))}
            started = time.perf_counter()
            saved = dict(feeds)
            for s in range(item["samples"]):
                for o, y in enumerate(model.run([feeds[f"s{s}_i{i}"] for i in range(len(model.input_names))])):
                    saved[f"s{s}_o{o}"] = np.asarray(y)
            said["run_s"] = round(time.perf_counter() - started, 3)
            said["output_units"] = model.output_units
            said["quantization"] = model.quantization
            np.savez(item["out"], **saved)
            said["status"] = "ok"
        except Exception as exc:  # the runtime's refusal is the row's result, not the job's end
            said["status"], said["error"] = "failed", f"{type(exc).__name__}: {exc}"
        print(json.dumps(said), flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "run":
        run_job(sys.argv[2])
    else:
        sys.exit("usage: python portable.py run JOB.json")
