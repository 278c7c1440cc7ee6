"""One Runner interface per runtime, so what is verified is exactly what is timed."""

from __future__ import annotations

import contextlib
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np


@dataclass
class Runner:
    """Runs one artifact: ``run(inputs) -> outputs``, inputs a tuple of arrays in model order.

    ``precision`` is what the runtime actually computes in (OpenVINO may pick bf16 on its own),
    ``detail`` anything else worth recording (execution provider, delegate, threads).
    """

    runtime: str
    run: Callable[[Sequence[np.ndarray]], list[np.ndarray]]
    precision: str
    detail: dict = field(default_factory=dict)
    # What the file declares it takes, as an app feeds it: (name, shape with None for a dynamic
    # dimension, numpy dtype name). A full-integer TFLite input is fed float and quantized here.
    inputs: list[tuple[str, list[int | None], str]] = field(default_factory=list)

    def __call__(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        return self.run(inputs)


def measure_latency(runner: Runner, inputs: Sequence[np.ndarray], warmup: int = 10, runs: int = 50, max_seconds: float = 10.0) -> dict:
    """Median and p90 wall time of one call, after warm-up; stops early past ``max_seconds``."""
    for _ in range(warmup):
        runner(inputs)
    times = []
    budget_end = time.perf_counter() + max_seconds
    for _ in range(runs):
        t0 = time.perf_counter()
        runner(inputs)
        times.append((time.perf_counter() - t0) * 1000)
        if time.perf_counter() > budget_end and len(times) >= 5:
            break
    times.sort()
    return {"latency_ms": statistics.median(times), "latency_p90_ms": times[int(0.9 * (len(times) - 1))], "latency_runs": len(times)}


def ran_as(stored: str, reported: str) -> str:
    """What computed, from a file's precision and what its runner reports: ONNX Runtime and LiteRT
    run a file's own types ("as stored"); OpenVINO reports the float precision it picked (bf16
    would not match torch), and runs a quantized file's int8 layers in int8 besides."""
    if reported == "as stored":
        return stored if stored != "unknown" else reported
    return f"int8+{reported}" if stored == "int8" else reported


def measure_interleaved(runners: dict, inputs: Sequence[np.ndarray], rounds: int = 3, warmup: int = 3, runs: int = 60,
                        max_seconds: float = 10.0) -> dict:
    """Each runner's median and p90 wall time of one call, measured in ``rounds`` rounds that take
    the runners in turn (the first rotating), so that a noisy neighbour or a clock change hits all
    of them alike. Each runner gets about ``runs`` calls, or ``max_seconds``, whichever ends first."""
    keys = list(runners)
    for key in keys:
        for _ in range(warmup):
            runners[key](inputs)
    times: dict = {key: [] for key in keys}
    per_round = max(1, runs // rounds)
    for r in range(rounds):
        shift = r % len(keys) if keys else 0
        for key in keys[shift:] + keys[:shift]:
            budget_end = time.perf_counter() + max_seconds / rounds
            for i in range(per_round):
                t0 = time.perf_counter()
                runners[key](inputs)
                times[key].append((time.perf_counter() - t0) * 1000)
                if time.perf_counter() > budget_end and i >= 1:
                    break
    out = {}
    for key, t in times.items():
        t.sort()
        out[key] = {"latency_ms": statistics.median(t), "latency_p90_ms": t[int(0.9 * (len(t) - 1))], "latency_runs": len(t)}
    return out


def output_tuple(out) -> tuple:
    """A model returns a tensor or a tuple/list of tensors; generic code always sees a tuple."""
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


@contextlib.contextmanager
def torch_threads(threads: int):
    """torch's thread count is the process's: set it for a measurement, then put back the caller's."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def torch_runner(model, threads: int | None = None) -> Runner:
    """``threads`` sets torch's (process-wide) thread count and leaves it so: for a process that
    only measures (a bench child). None leaves it as it is; a library call that measures torch
    wraps the measurement in ``torch_threads``."""
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    threads = torch.get_num_threads()

    def run(inputs):
        with torch.inference_mode():
            out = model(*[torch.from_numpy(np.asarray(x)) for x in inputs])
        return [o.numpy() for o in output_tuple(out)]

    return Runner("torch", run, "fp32", {"threads": threads})


def onnxruntime_runner(path: Path, threads: int, providers: Sequence[str] | None = None) -> Runner:
    from .portable import ONNX_TYPES, ort_session, shared_cpu

    asked = list(providers or ["CPUExecutionProvider"])
    sess = ort_session(str(path), threads, asked)  # the same session a bundle's runner opens on the device
    if asked[0] not in sess.get_providers():
        # ONNX Runtime falls back to the CPU when a provider fails to start (a CUDA library missing,
        # say), with only a log line: timed so, a "cuda" row would be the CPU's.
        raise RuntimeError(f"ONNX Runtime could not start {asked[0]} (it fell back to {', '.join(sess.get_providers())}): see its log above")
    names = [i.name for i in sess.get_inputs()]

    def run(inputs):
        return sess.run(None, dict(zip(names, inputs)))

    declared = [(i.name, [d if isinstance(d, int) and d >= 0 else None for d in i.shape], ONNX_TYPES.get(i.type, "float32"))
                for i in sess.get_inputs()]
    detail = {"threads": threads, "providers": sess.get_providers()} | ({"idle_threads": "asleep (EDGEZOO_SHARED_CPU)"} if shared_cpu() else {})
    return Runner("onnxruntime", run, "as stored", detail, declared)



def openvino_runner(path: Path, threads: int, device: str = "CPU", precision_hint: str = "f32") -> Runner:
    """``precision_hint`` defaults to f32: on CPUs with AVX512_BF16 OpenVINO otherwise runs float
    models in bf16. What the compiled model reports back is recorded, not what was asked."""
    import openvino as ov

    core = ov.Core()
    config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}
    if precision_hint:
        config["INFERENCE_PRECISION_HINT"] = precision_hint
    compiled = core.compile_model(str(path), device, config)
    request = compiled.create_infer_request()
    ran = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()  # "f32", "bf16", "f16"

    def run(inputs):
        result = request.infer(list(inputs))
        return [np.array(result[o]) for o in compiled.outputs]

    declared = [(i.get_any_name(), [d.get_length() if d.is_static else None for d in i.get_partial_shape()], np.dtype(i.get_element_type().to_dtype()).name)
                for i in compiled.inputs]
    return Runner("openvino", run, ran, {"threads": threads, "device": device, "inference_precision": ran}, declared)


def litert_runner(path: Path, threads: int, delegate: str | None = "XNNPACK") -> Runner:
    """Full-integer models take and give int8 tensors: quantize inputs and dequantize outputs with
    each tensor's own scale and zero point, as an app on the device does. ``delegate`` None runs
    LiteRT's own builtin kernels, without the XNNPACK delegate it applies by default."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from ..quiet import quiet_native
    from .portable import dequantize, in_order, is_quantized, quantize

    resolver = OpResolverType.AUTO if delegate else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    with quiet_native():  # "INFO: Created TensorFlow Lite XNNPACK delegate" comes from C++
        interp = Interpreter(model_path=str(path), num_threads=threads, experimental_op_resolver_type=resolver)
        runner = interp.get_signature_runner()
        runner(**{n: np.zeros(d["shape"], d["dtype"]) for n, d in runner.get_input_details().items()})
    in_details = in_order(runner.get_input_details())
    out_details = runner.get_output_details()
    in_names = list(in_details)

    def run(inputs):
        feed = {n: quantize(x, in_details[n]["dtype"], *in_details[n]["quantization"]) for n, x in zip(in_names, inputs)}
        out = runner(**feed)
        return [dequantize(out[k], *out_details[k]["quantization"]) for k in out_details]

    io = {n: np.dtype(d["dtype"]).name for n, d in in_details.items()}
    declared = [(n, [int(x) if x >= 0 else None for x in d.get("shape_signature", d["shape"])],
                 "float32" if is_quantized(d) else np.dtype(d["dtype"]).name) for n, d in in_details.items()]
    return Runner("litert", run, "as stored", {"threads": threads, "delegate": delegate or "none (builtin kernels)", "input_dtypes": io}, declared)
