"""Converters and quantizers run in a child process, one per format, with a timeout per step.

A converter can segfault, abort or hang on a model (measured: LiteRT 2.3 aborting on
ai-edge-quantizer's full-integer GPT). In a child, that becomes a failed row naming the signal or
the timeout, and the other formats still land. The child is a fresh interpreter, not a fork: OpenVINO's TBB and
OpenMP thread pools are not fork-safe, and the parent has used both by then. So the child
rebuilds the torch model from its builder's name and the exact weights the parent checked, and
calls the format's functions by name (a Format's functions are module-level for that reason).

After a file is made, the same child loads it and runs it once in its runtime (the probe): a
runtime that dies on a file kills the child, not the export. One child serves a format's fp32 and
int8 steps, so the converter is imported once; a step that crashes or times out takes its child
with it, and the next step starts a fresh one.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..errors import how_it_ended
from .base import by_name, name_of

# The slowest step measured on the zoo is 19 s (AlexNet's full-integer TFLite on 2 cores), plus up
# to ~10 s for a child to import torch and a converter: 600 s is 20x that, for slower machines.
DEFAULT_STEP_TIMEOUT_S = 600.0


class StepFailed(RuntimeError):
    """The step raised in the child: ``kind`` and ``message`` as the converter said, ``trace`` its traceback."""

    def __init__(self, kind: str, message: str, trace: str):
        super().__init__(message)
        self.kind, self.trace = kind, trace


class StepCrashed(RuntimeError):
    """The child died (a signal) or outlived the step's timeout."""


@dataclass(frozen=True)
class ModelSource:
    """How a child builds the parent's torch model: a builder by name (or a user's PATH.py:Class),
    its keyword arguments, and the weights file the parent wrote from the model it checked."""

    builder: str                 # "module:qualname", or "PATH.py:Class" when ``from_file``
    kwargs: dict
    weights: str
    from_file: bool = False
    architecture: dict | None = None   # a pruned model's (edgezoo.architecture)
    qat: int = 0                       # > 0: fake-quantized (edgezoo.qat.prepare) with weights in [-qat, qat] before its weights load

    def build(self):
        import torch

        if self.from_file:
            from ..usermodel import load_user_builder

            builder = load_user_builder(self.builder)
        else:
            builder = by_name(self.builder)
        model = builder(**self.kwargs)
        if self.architecture:
            from ..architecture import apply_architecture

            apply_architecture(model, self.architecture, self.builder)
        if self.qat:
            from ..qat import prepare

            prepare(model, self.qat)
        model.load_state_dict(torch.load(self.weights, map_location="cpu", weights_only=True), strict=True)
        return model.eval()


@dataclass(frozen=True)
class ChildJob:
    """What every step of one export shares, as files and names a spawned child can read."""

    model: ModelSource
    example_inputs: str          # .npz of the model's input tuple
    input_names: list[str]
    output_names: list[str]
    calibration: str             # .npz of the calibration samples, flattened: sample i, input k -> "s{i}_{k}"
    calibration_source: str
    workdir: str
    threads: int
    qat_model: ModelSource | None = None   # export --qat: the fake-quantized model the int8 files are made from


def write_job(model, source_builder: str, kwargs: dict, from_file: bool, architecture: dict | None, example_inputs: Sequence[np.ndarray],
              input_names, output_names, calibration, workdir: Path, threads: int, qat_model=None) -> ChildJob:
    """Writes the model's weights, its example inputs and the calibration samples into ``workdir``."""
    import torch

    weights = workdir / "child-model.pt"
    with open(weights, "wb") as f:
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, f)
    inputs = workdir / "child-inputs.npz"
    np.savez(inputs, *[np.asarray(x) for x in example_inputs])
    samples = workdir / "child-calibration.npz"
    np.savez(samples, **{f"s{i}_{k}": np.asarray(x) for i, sample in enumerate(calibration.samples) for k, x in enumerate(sample)})
    qat = None
    if qat_model is not None:
        qat_weights = workdir / "child-qat-model.pt"
        with open(qat_weights, "wb") as f:
            torch.save({k: v.detach().cpu() for k, v in qat_model.state_dict().items()}, f)
        from ..qat import weight_grid

        # The parent's grid, not this host's default: the child rebuilds exactly the fine-tuned model.
        qat = ModelSource(source_builder, dict(kwargs), str(qat_weights), from_file, architecture, qat=weight_grid(qat_model))
    return ChildJob(ModelSource(source_builder, dict(kwargs), str(weights), from_file, architecture), str(inputs), list(input_names), list(output_names),
                    str(samples), calibration.source, str(workdir), threads, qat)


def _context(job: ChildJob):
    import torch

    from ..quantize.calibration import CalibrationSet
    from .base import ExportContext

    with np.load(job.example_inputs) as f:
        inputs = tuple(torch.from_numpy(f[f"arr_{i}"]) for i in range(len(f.files)))
    with np.load(job.calibration) as f:
        count = len({key.split("_")[0] for key in f.files})
        samples = [tuple(f[f"s{i}_{k}"] for k in range(len(inputs))) for i in range(count)]
    return ExportContext(model=job.model.build(), example_inputs=inputs, input_names=job.input_names, output_names=job.output_names,
                         calibration=CalibrationSet(samples, job.calibration_source), workdir=Path(job.workdir), threads=job.threads,
                         qat_model=job.qat_model.build() if job.qat_model is not None else None)


def _serve(fd: int) -> None:
    """The child: answers requests until the parent closes the connection (or exits, however it
    exits). A "job" request switches to another export's model."""
    from ..serving import serve

    state = {"job": None, "ctx": None}

    def on_job(job) -> None:
        state.update(job=job, ctx=None)

    def handle(request: dict):
        function = by_name(request["function"])
        if request["op"] == "convert":
            state["ctx"] = state["ctx"] or _context(state["job"])  # built once per job, on its first conversion
            return function(state["ctx"], *request["args"])
        if request["op"] == "probe":
            return _probe(function, request["args"])
        return function(*request["args"])

    serve(fd, handle, on_job)


def _probe(runner, args) -> None:
    path, threads, feed = args
    runner(Path(path), threads)(list(feed))


class ConverterChild:
    """A child process for one format's steps. ``convert``, ``call`` and ``probe`` raise StepFailed
    for a Python error in the child, StepCrashed for a signal or a timeout (the child is then gone,
    and the next step starts a fresh one). A child outlives one export: ``use`` hands it the next
    job, so a process that exports many models (the test suite, the zoo benchmark) imports each
    converter once."""

    def __init__(self, timeout_s: float = DEFAULT_STEP_TIMEOUT_S, entry: str = "edgezoo.export.child:_serve"):
        """``entry``: the function the child runs, "module:name", given the connection's file
        descriptor: another serving loop (edgezoo.devices.bench_child's) speaks the same protocol."""
        self.job: ChildJob | None = None
        self.timeout_s = timeout_s
        self.entry = entry
        self._process: subprocess.Popen | None = None
        self._conn = None

    def use(self, job: ChildJob, timeout_s: float) -> "ConverterChild":
        self.job, self.timeout_s = job, timeout_s
        if self._alive():
            self._send_job()
        return self

    def _send_job(self) -> None:
        self._conn.send({"op": "job", "job": self.job, "path": [p for p in sys.path if p]})

    def start(self) -> None:
        """Starts the child now (it imports while other work goes on); steps start it anyway."""
        if not self._alive():
            self._start()

    def convert(self, function: Callable, *args) -> object:
        return self._ask({"op": "convert", "function": name_of(function), "args": args}, "converting")

    def call(self, function: Callable, *args) -> object:
        """``function(*args)`` in the child: reading a file a converter just made, say."""
        return self._ask({"op": "call", "function": name_of(function), "args": args}, f"running {function.__name__}")

    def probe(self, runner: Callable, path: Path, threads: int, inputs: Sequence[np.ndarray]) -> None:
        self._ask({"op": "probe", "function": name_of(runner), "args": (str(path), threads, [np.asarray(x) for x in inputs])}, "loading and running the artifact")

    def _alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _ask(self, request: dict, doing: str):
        self.start()
        reply = None
        deadline = time.monotonic() + self.timeout_s
        try:
            self._conn.send(request)
            # Not EOF alone: a process the converter started may still hold the socket open
            # after the child itself died. So the child's own liveness is checked as well.
            while time.monotonic() < deadline:
                if self._conn.poll(0.1):
                    reply = self._conn.recv()
                    break
                if self._process.poll() is not None:
                    if self._conn.poll(0.5):  # a reply sent just before it exited
                        reply = self._conn.recv()
                    break
        except (EOFError, OSError):
            reply = None
        except BaseException:  # Ctrl-C, SIGTERM: the child has its own session; take it down too
            self.close()
            raise
        if reply is None:
            # Timed out only if the clock says so: a dying child closes its socket a moment
            # before it can be reaped, so liveness alone would misreport a crash as a hang.
            timed_out = time.monotonic() >= deadline
            if not timed_out:
                try:
                    self._process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    pass
            code = self.close()
            if timed_out:
                raise StepCrashed(f"did not finish {doing} in {self.timeout_s:.0f} s (child process killed; --timeout sets the limit)")
            raise StepCrashed(f"crashed ({how_it_ended(code)}) {doing}, in a child process")
        if reply[0] == "error":
            raise StepFailed(reply[1], reply[2], reply[3])
        return reply[1]

    def _start(self) -> None:
        """A fresh interpreter (not multiprocessing's spawn, which re-runs the caller's __main__
        script in the child) in isolated mode (-I: no folder on the way, the working one included,
        can shadow the installed package), in its own session so that killing it takes along
        whatever the converter started."""
        from multiprocessing.connection import Connection

        mine, theirs = socket.socketpair()
        module, function = self.entry.split(":")
        code = f"from {module} import {function}; {function}({theirs.fileno()})"
        self._process = subprocess.Popen([sys.executable, "-I", "-c", code], pass_fds=[theirs.fileno()], cwd=tempfile.gettempdir(),
                                         start_new_session=True)
        theirs.close()
        self._conn = Connection(mine.detach())
        self._send_job()

    def pause(self) -> None:
        """Stops the child and what it started (SIGSTOP to its process group), so that its idle
        threads, spinning after their last call, take no CPU from a sibling being timed."""
        self._signal_group(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal_group(signal.SIGCONT)

    def _signal_group(self, sig: int) -> None:
        if self._alive():
            try:
                os.killpg(self._process.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass

    def close(self) -> int | None:
        """Kills the child and what it started; returns its exit code."""
        if self._process is None:
            return None
        try:  # the child leads its own process group
            os.killpg(self._process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._process.wait(timeout=30)
        code = self._process.returncode
        self._conn.close()
        self._process = self._conn = None
        return code


_CHILDREN: dict[str, ConverterChild] = {}


def child_for(format_name: str, job: ChildJob, timeout_s: float) -> ConverterChild:
    """This process's child for one format, switched to ``job``. Children exit with the process
    (their connection closes), however it exits."""
    return _CHILDREN.setdefault(format_name, ConverterChild()).use(job, timeout_s)


class InProcess:
    """The same steps in the exporting process, without the wall: what benchmarks/isolation.py
    compares against, and a way to step into a converter with a debugger."""

    def __init__(self, job: ChildJob):
        self.job, self._ctx = job, None

    def start(self) -> None:
        pass

    def convert(self, function: Callable, *args) -> object:
        from ..quiet import quiet_native

        self._ctx = self._ctx or _context(self.job)
        return self._run(lambda: function(self._ctx, *args), quiet_native)

    def call(self, function: Callable, *args) -> object:
        return self._run(lambda: function(*args))

    def probe(self, runner: Callable, path: Path, threads: int, inputs: Sequence[np.ndarray]) -> None:
        self._run(lambda: _probe(runner, (str(path), threads, list(inputs))))

    @staticmethod
    def _run(step, quiet=None):
        import contextlib

        try:
            with quiet() if quiet else contextlib.nullcontext():
                return step()
        except Exception as exc:
            raise StepFailed(type(exc).__name__, str(exc), "".join(traceback.format_exception(exc))) from exc
