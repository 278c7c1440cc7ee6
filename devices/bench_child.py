"""The child side of `edgezoo bench`: one process loads one artifact in one runtime and times it,
so that one runtime's thread pool, allocator or caches never skew another's figures.

The process imports numpy and that runtime only (not torch, unless torch eager is what is timed):
its memory growth is the artifact's. The parent (edgezoo.bench) talks to it over a socket:
``load`` once, then ``burst`` when its turn in the interleaved rounds comes, then ``memory``.
"""

from __future__ import annotations

import time
from pathlib import Path

from .portable import fill_dynamic, seeded_inputs

_STATE: dict = {}


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"no {field} in /proc/self/status")


def _reset_peak() -> None:
    """The peak resident size starts from now. A process's high-water mark survives fork and exec,
    so without this a child reports its parent's peak; writing 5 to clear_refs resets it (Linux)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass  # then VmHWM may hold the parent's peak; memory() says so


def _import_runtime(runtime: str) -> None:
    """The runtime's import is not the artifact's memory: done before the baseline is taken."""
    if runtime == "onnxruntime":
        import onnxruntime  # noqa: F401
    elif runtime == "openvino":
        import openvino  # noqa: F401
    elif runtime.startswith("litert"):
        import ai_edge_litert.interpreter  # noqa: F401
    elif runtime == "torch":
        import torch  # noqa: F401


def _runner(runtime: str, path: str, threads: int, device: str, model: dict | None):
    from . import runners

    if runtime == "onnxruntime":
        providers = ["CUDAExecutionProvider"] if device == "cuda" else ["CPUExecutionProvider"]
        return runners.onnxruntime_runner(Path(path), threads, providers)
    if runtime == "openvino":
        return runners.openvino_runner(Path(path), threads, device=device.split(":", 1)[1] if device.startswith("openvino:") else "CPU")
    if runtime == "litert":
        return runners.litert_runner(Path(path), threads)
    if runtime == "litert-ref":
        return runners.litert_runner(Path(path), threads, delegate=None)
    if runtime == "torch":
        return runners.torch_runner(_torch_model(model), threads)
    raise ValueError(f"no runtime called {runtime!r}")


def _torch_model(source: dict):
    """The exported torch model, rebuilt as its manifest says: builder by name (or the user's
    PATH.py:Class), keyword arguments, and the weights read without unpickling code."""
    from ..weights import load_into, read_state_dict

    if source["from_file"]:
        from ..usermodel import load_user_builder

        builder = load_user_builder(source["builder"])
    else:
        from ..export.base import by_name

        builder = by_name(source["builder"])
    model = builder(**source["kwargs"])
    if source.get("architecture"):
        from ..architecture import apply_architecture

        apply_architecture(model, source["architecture"], source["builder"])
    load_into(model, read_state_dict(source["weights"]), source["weights"])
    return model.eval()


def load(runtime: str, path: str | None, threads: int, device: str, declared: list | None, shapes: list | None, model: dict | None) -> dict:
    """Loads (compiles) the artifact and calls it once. ``declared``: the inputs as the export's
    manifest gives them, [(name, shape, dtype)]; None to take what the file itself declares, with
    ``shapes`` filling dynamic dimensions, in input order."""
    _import_runtime(runtime)
    _reset_peak()
    base = _status_kib("VmRSS")
    started = time.perf_counter()
    runner = _runner(runtime, path, threads, device, model)
    load_s = time.perf_counter() - started
    feed = seeded_inputs(fill_dynamic(runner.inputs, shapes) if declared is None else declared)
    started = time.perf_counter()
    runner(feed)
    first_ms = (time.perf_counter() - started) * 1e3
    _STATE.update(runner=runner, feed=feed, base=base)
    return {"load_s": load_s, "first_call_ms": first_ms, "precision": runner.precision, "detail": runner.detail,
            "inputs": [f"{'x'.join(map(str, x.shape))} {x.dtype.name}" for x in feed]}


def burst(calls: int) -> list[float]:
    """``calls`` timed calls, in milliseconds: the bare loop, nothing else in it."""
    run, feed = _STATE["runner"].run, _STATE["feed"]
    times = []
    clock = time.perf_counter_ns
    for _ in range(calls):
        t0 = clock()
        run(feed)
        times.append((clock() - t0) / 1e6)
    return times


def ready() -> bool:
    """Answers once the child has started and imported this module."""
    return True


def memory() -> dict:
    """Peak resident memory since just before loading, less what the process held then."""
    return {"peak_rss_growth_bytes": max(0, _status_kib("VmHWM") - _STATE["base"]) * 1024}


def serve(fd: int) -> None:
    """Answers the parent's "call" requests for this module's functions (edgezoo.serving's
    protocol) until the parent closes the connection."""
    from ..serving import serve as serve_requests

    functions = {"ready": ready, "load": load, "burst": burst, "memory": memory}
    serve_requests(fd, lambda request: functions[request["function"].rsplit(":", 1)[1]](*request["args"]))
