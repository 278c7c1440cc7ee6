"""export(): spec -> torch model -> exporter -> artifact -> checker -> manifest row -> report.

Every artifact is run in its own runtime in the call that makes it; nothing lands in the output
folder before it is complete (staged, then os.replace), and the manifest is written last.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import tempfile
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from . import manifest as manifest_types
from .hostinfo import host, versions
from . import outdir, progress, zoo
from .accuracy_aware import Score, Selection, check_max_drop, keep_fewest_float, selection, selection_score
from .check import (
    FailureKind,
    Reference,
    judge_artifact,
    measure_artifact,
    nonfinite_reference,
    reference_outputs,
)
from .devices.runners import measure_interleaved, ran_as, torch_runner, torch_threads
from .errors import BadInput, did_you_mean, one_line
from .export import FORMATS, Format
from .export.child import DEFAULT_STEP_TIMEOUT_S, ConverterChild, InProcess, StepCrashed, StepFailed, child_for, name_of, write_job
from .fileio import sha256_file, write_text_atomic
from .manifest import (
    Artifact,
    Bar,
    Baseline,
    FileEntry,
    InputEntry,
    Manifest,
    RolloutSummary,
    Training,
    artifact_from,
)
from .metrics import default_int8_drop
from .quantize import calibration
from .registry import INT8_SCHEMES, InputSpec, ModelSpec
from .usermodel import check_forward, inputs_from_shapes, is_user_ref, parse_init_args, parse_input, parse_input_shape, user_spec
from .userdata import UserData, check_metric_fits, load_user_data
from .weights import load_into, read_state_dict

PRECISIONS = ("fp32", "int8")
USER_SAMPLE_COUNT = 32


@dataclass
class ExportResult:
    out_dir: Path
    manifest: Manifest

    @property
    def manifest_path(self) -> Path:
        return self.out_dir / "manifest.json"

    @property
    def ok(self) -> bool:
        return self.manifest.ok


def parse_formats(formats: str | Sequence[str] | None) -> list[Format]:
    if formats is None:
        return list(FORMATS.values())
    names = [f.strip() for f in (formats.split(",") if isinstance(formats, str) else formats) if f.strip()]
    if not names:
        raise BadInput(f"--formats {formats!r} names no format: choose from {','.join(FORMATS)}")
    chosen = []
    for name in names:
        if name not in FORMATS:
            raise BadInput(f"--formats: unknown format {name!r}: {did_you_mean(name, FORMATS, cutoff=0.4)}choose from {','.join(FORMATS)}")
        if FORMATS[name] not in chosen:
            chosen.append(FORMATS[name])
    return chosen


def prepare_out_dir(out: str | os.PathLike) -> tuple[Path, list[Path]]:
    """Create the output folder (or accept an existing one) and prove it is writable, before any
    work. Returns the folder and the folders this call created (to remove if the input is bad)."""
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise BadInput(f"output path {str(out)!r} is a file, not a folder: pass --out a folder (new or existing)")
    created = [p for p in [out, *out.parents] if not p.exists()][::-1]
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".edgezoo-write-test-"):
            pass
    except OSError as exc:
        _remove_empty(created)
        raise BadInput(f"output folder {str(out)!r} is not writable ({exc.strerror or exc}): pass --out a folder you can write to") from None
    return out.resolve(), created


def _remove_empty(folders: list[Path]) -> None:
    for folder in reversed(folders):
        try:
            folder.rmdir()
        except OSError:
            break


MAX_INPUT_BYTES = 1 << 30  # one batch of inputs; the reference, calibration and every runtime hold several


def resolve_spec(model: str | ModelSpec, input_shapes: Sequence[tuple[int, ...]] | None, inputs: Sequence[InputSpec] | None = None,
                 init_args: dict | None = None) -> ModelSpec:
    """The model card: a zoo model's (at other input shapes), or a user's module made into one
    from its --input declarations (or --input-shape's float shorthand) and --init-args."""
    if isinstance(model, str) and is_user_ref(model):
        if inputs and input_shapes:
            raise BadInput("give a model's inputs either as --input NAME:SHAPE[:DTYPE[:LOW-HIGH]] or as --input-shape, not both")
        spec = user_spec(model, list(inputs or []) or inputs_from_shapes(list(input_shapes or [])), init_args)
    else:
        if inputs:
            raise BadInput(f"--input declares a model of your own's inputs; {model if isinstance(model, str) else model.name} takes its card's: "
                           "change their shapes with --input-shape")
        if init_args is not None:
            raise BadInput(f"--init-args builds a model of your own (PATH.py:NAME); {model if isinstance(model, str) else model.name} is built by its card")
        spec = model if isinstance(model, ModelSpec) else zoo.get(model)
        if input_shapes:
            if len(input_shapes) != len(spec.inputs):
                raise BadInput(f"--input-shape: {spec.name} takes {len(spec.inputs)} input(s), got {len(input_shapes)} shape(s)")
            spec = spec.with_input_shapes(input_shapes)
    size_bytes = sum(math.prod(i.shape) * torch.empty((), dtype=getattr(torch, i.dtype)).element_size() for i in spec.inputs)
    if size_bytes > MAX_INPUT_BYTES:
        shapes = ", ".join("x".join(map(str, i.shape)) for i in spec.inputs)
        raise BadInput(f"--input-shape {shapes}: one batch of inputs would take {size_bytes / (1 << 30):.1f} GiB (bound {MAX_INPUT_BYTES >> 30} GiB): use a smaller batch or size")
    return spec


def check_arguments(threads: int, calib_samples: int, timeout: float = DEFAULT_STEP_TIMEOUT_S) -> None:
    cores = os.cpu_count() or 1
    if not 1 <= threads <= cores:
        raise BadInput(f"--threads {threads}: this machine has {cores} CPU cores; pass a number from 1 to {cores}")
    if calib_samples < 1:
        raise BadInput(f"--calib-samples {calib_samples}: pass a positive number of calibration samples (default 128)")
    if not timeout > 0:
        raise BadInput(f"--timeout {timeout}: pass a positive number of seconds per conversion step (default {DEFAULT_STEP_TIMEOUT_S:.0f})")


def load_model(spec: ModelSpec, weights: str | os.PathLike | None, retrain: bool = False) -> tuple[torch.nn.Module, str, str | None, dict | None]:
    """(model in eval mode, where its weights came from, their file's sha256, how the zoo
    checkpoint was trained)."""
    training = None
    weights_sha256 = None
    # The export's input shapes, checked on the untrained model first: a shape the model cannot
    # take is refused in a second, not after minutes of training.
    check_forward(spec.build().eval(), spec, spec.description or spec.name)
    if weights is not None:
        model = spec.build()
        load_into(model, read_state_dict(weights), str(weights))
        source, weights_sha256 = f"--weights {weights}", sha256_file(Path(weights))
    elif spec.load_data is not None and spec.recipe.epochs > 0:
        from .train import trained_model, training_record

        model, path = trained_model(spec, retrain=retrain)
        source, training, weights_sha256 = str(path), training_record(path), sha256_file(path)
    else:
        model = spec.build()
        source = "initial weights (no --weights given)"
        progress.warn(f"{spec.name}: no --weights given, exporting the model's initial weights")
    model.eval()
    check_forward(model, spec, spec.description or spec.name)
    return model, source, weights_sha256, training


def export(
    model: str | ModelSpec = "mobilenet",
    *,
    int8: bool = False,
    formats: str | Sequence[str] | None = None,
    out: str | os.PathLike | None = None,
    weights: str | os.PathLike | None = None,
    input_shape: str | Sequence[str] | None = None,
    calib: str | os.PathLike | None = None,
    calib_samples: int = 128,
    threads: int = 2,
    retrain: bool = False,
    int8_scheme: str | None = None,
    timeout: float = DEFAULT_STEP_TIMEOUT_S,
    isolate: bool = True,
    prune: float | None = None,
    finetune_epochs: int | None = None,
    max_drop: float | None = None,
    inputs: Sequence[str] | None = None,
    init_args: str | dict | None = None,
    data: str | os.PathLike | None = None,
    metric: str | None = None,
    qat: bool = False,
    qat_epochs: int | None = None,
) -> ExportResult:
    """What `edgezoo export` does: every chosen format in fp32 (and int8), each checked against torch.
    ``int8_scheme`` ("static" or "weights") replaces the model card's choice for every format.
    ``isolate=False`` runs the converters in this process, without the wall (for measuring what
    the wall costs, or for a debugger): a converter's crash then ends the export. ``prune``: the
    fraction of channels to remove first (edgezoo.prune; fine-tuned ``finetune_epochs``, cached).
    ``max_drop``: accuracy-aware static int8 in every format (edgezoo.accuracy_aware): the fewest
    layers kept float for int8 to lose at most this much of the task metric, now its bound.

    A model of your own (``model`` "PATH.py:NAME"): ``inputs`` as --input texts
    (NAME:SHAPE[:DTYPE[:LOW-HIGH]], forward's order), ``init_args`` its constructor's keyword
    arguments (a dict, or JSON text), ``data`` an .npz or folder of .npy files (edgezoo.userdata)
    for calibration and, with ``metric``, the task metric of torch and every artifact.

    ``qat``: quantization-aware fine-tuning (edgezoo.qat, ``qat_epochs``, cached), whose
    fake-quantized graph is the int8 files (ONNX and OpenVINO); the fp32 files and the torch
    reference stay the trained model, so each int8 row says what QAT kept of its metric."""
    started = time.perf_counter()
    check_arguments(threads, calib_samples, timeout)
    chosen = parse_formats(formats)
    shapes = [parse_input_shape(s) for s in ([input_shape] if isinstance(input_shape, str) else (input_shape or []))]
    declared = [parse_input(s) for s in ([inputs] if isinstance(inputs, str) else (inputs or []))]
    spec = resolve_spec(model, shapes, declared, init_args if isinstance(init_args, dict) else parse_init_args(init_args))
    spec, user_data = _with_user_data(spec, data, metric, calib)
    if int8_scheme is not None:
        if int8_scheme not in INT8_SCHEMES:
            raise BadInput(f"--int8-scheme {int8_scheme!r}: not a scheme; use one of {', '.join(INT8_SCHEMES)}")
        spec = dataclasses.replace(spec, int8_scheme=int8_scheme, int8_scheme_by_format={})
    if qat_epochs is not None and not qat:
        raise BadInput(f"--epochs {qat_epochs} sets quantization-aware fine-tuning's epochs: add --qat")
    if qat:
        for flag, given in (("--prune", prune is not None), ("--max-drop", max_drop is not None), ("--int8-scheme", int8_scheme is not None),
                            ("--calib", calib is not None)):
            if given:
                raise BadInput(f"--qat with {flag}: QAT's int8 is its own fine-tuned graph (its ranges learned, nothing calibrated); export with one or the other")
        if qat_epochs is not None and qat_epochs < 1:
            raise BadInput(f"--epochs {qat_epochs}: quantization-aware fine-tuning needs at least 1 epoch")
        int8 = True
        spec = dataclasses.replace(spec, int8_scheme="qat", int8_scheme_by_format={})
    check_max_drop(max_drop, int8)
    if max_drop is not None:
        if int8_scheme == "weights":
            raise BadInput("--max-drop keeps layers of static int8 in float; it does not go with --int8-scheme weights")
        spec = dataclasses.replace(spec, int8_scheme="static", int8_scheme_by_format={},
                                   tolerance=dataclasses.replace(spec.tolerance, int8_metric_drop=max_drop))
    calibrates = int8 and any(spec.int8_scheme_for(f.name) == "static" for f in chosen)
    if prune is not None:
        from .prune import check_prunable

        check_prunable(spec, prune, finetune_epochs, weights)
    out_dir, created = prepare_out_dir(out if out is not None else default_out(spec, prune))
    pruning = None
    try:
        if calib is not None:
            calib_set = calibration.from_user_files(calib, spec.inputs, limit=calib_samples)
        net, weights_source, weights_sha256, training = load_model(spec, weights, retrain=retrain)
        if metric is not None:
            check_metric_fits(net, user_data, spec.inputs[0].shape[0], metric)
        if prune is not None:
            from .prune import pruned_model

            pruned = pruned_model(spec, prune, finetune_epochs)
            spec = dataclasses.replace(spec, architecture=pruned.architecture)
            net, weights_source, weights_sha256 = pruned.model, str(pruned.weights), sha256_file(pruned.weights)
            check_forward(net, spec, f"{spec.name} pruned")
            pruning = manifest_types.Pruning(pruned.ratio, pruned.finetune_epochs, *pruned.macs, *pruned.params, *pruned.metric, len(pruned.architecture))
        data = spec.load_data(spec.inputs[0].shape) if spec.load_data is not None else None
        tuned = qat_entry = None
        if qat:
            from .qat import check_qat, qat_model

            check_qat(spec, data, qat_epochs, weights_sha256)
            tuned = qat_model(spec, net, data, weights_sha256, qat_epochs)
            qat_entry = manifest_types.Qat(tuned.epochs, tuned.lr, tuned.metric_before, tuned.int8_simulated, str(tuned.weights), tuned.weight_bits)
        with progress.step(f"{spec.name}: torch reference on {'the held-out test split' if data else 'sample inputs'}"):
            ref = reference_outputs(net, spec, data, n_samples=USER_SAMPLE_COUNT, samples=user_data.task if user_data and data is None else None)
        broken = nonfinite_reference(ref)
        if broken:
            raise BadInput(f"{weights_source}: the model's weights give {broken}: check the checkpoint (NaN or inf weights, or values that overflow)")
        sel = None
        if max_drop is not None:
            with progress.step(f"{spec.name}: torch on the selection split (--max-drop chooses layers there)"):
                sel = selection(net, spec, data)
    except BaseException:
        _remove_empty(created)  # bad input leaves nothing behind, not even the folder
        raise
    spec, int8_bound = _int8_bound(spec, ref, max_drop) if int8 else (spec, None)
    bar = _bar_entry(spec, data, ref.metric)
    if bar is not None and not bar.met:
        progress.warn(f"{spec.name}: the torch model's {spec.metric_name} {ref.metric:.4g} misses the card's bar ({bar.direction} {bar.value:.4g}, {bar.how}), "
                      f"with weights from {weights_source}: the artifacts are checked against a model that does not do its task")
    if calib is None:
        if data is not None or user_data is not None:
            calib_set = calibration.from_task_data(data or user_data.task, calib_samples, batch_size=spec.inputs[0].shape[0])
        elif calibrates:
            calib_set = calibration.random_inputs(spec, min(calib_samples, 64))
            progress.warn(f"{spec.name}: no --calib given, int8 calibrates on random inputs; give --calib FILE.npy|DIR for real ranges")
        else:
            calib_set = calibration.CalibrationSet([], "none (no format calibrates)")

    precisions = PRECISIONS if int8 else PRECISIONS[:1]
    planned = [f.name for fmt in chosen for p in precisions for f in fmt.files(Path(fmt.file_name(spec.name, p)))]
    with outdir.claimed(out_dir, planned) as claim:
        rows, log_lines, runners = _make_artifacts(chosen, precisions, spec, net, ref, calib_set, out_dir, threads, timeout, isolate, sel,
                                                   tuned.model if tuned is not None else None)
        latencies = _latencies(net, runners, ref, threads)
        rows = [dataclasses.replace(a, **latencies.get((a.format, a.precision), {})) for a in rows]
        for a in rows:
            if a.accuracy_aware is not None and a.accuracy_aware.kept_float:
                a.accuracy_aware.all_int8_latency_ms = latencies.get((a.format, ALL_INT8), {}).get("latency_ms")
        log = None
        log_path = out_dir / outdir.LOG
        if log_lines:
            write_text_atomic(log_path, "\n".join(log_lines))
            log = FileEntry(log_path.name, log_path.stat().st_size, sha256_file(log_path))
        elif log_path.exists():
            log_path.unlink()  # edgezoo's: claimed() refused it otherwise
        manifest = Manifest(
            model=spec.name,
            description=spec.description,
            task=spec.task,
            dataset=spec.dataset,
            weights=weights_source,
            weights_sha256=weights_sha256,
            inputs=[InputEntry(i.name, list(i.shape), i.dtype, list(i.value_range), data.image if data is not None and k == 0 else None)
                    for k, i in enumerate(spec.inputs)],
            reference=manifest_types.Reference(
                framework="torch",
                metric_name=spec.metric_name,
                metric=ref.metric,
                eval_samples=ref.n_samples,
                eval_source=ref.source,
                baseline=None if data is None or data.baseline is None else Baseline(*data.baseline),
                bar=bar,
                rollout=None if ref.rollout is None else RolloutSummary(data.rollout.name, ref.rollout.summary),
                **latencies.pop("torch"),
            ),
            training=None if training is None else Training(**training),
            calibration=calib_set.source if calibrates else None,
            int8_scheme=spec.int8_scheme if int8 else None,
            int8_scheme_by_format={f.name: spec.int8_scheme_for(f.name) for f in chosen if spec.int8_scheme_for(f.name) != spec.int8_scheme} if int8 else None,
            threads=threads,
            host=host(),
            versions=_versions(chosen),
            seconds=round(time.perf_counter() - started, 1),
            artifacts=rows,
            log=log,
            source=_model_source(spec, None if pruning else weights, weights_source, weights_sha256),
            pruning=pruning,
            int8_bound=int8_bound,
            qat=qat_entry,
            labels=list(data.labels) if data is not None and data.labels else None,
        )
        write_text_atomic(out_dir / outdir.MANIFEST, manifest.to_json())
        claim.finished()
    return ExportResult(out_dir, manifest)


def _with_user_data(spec: ModelSpec, data, metric: str | None, calib) -> tuple[ModelSpec, "UserData | None"]:
    """A user's --data (and --metric) read and checked against the model's inputs before anything
    is written; with a metric it becomes the card's task data, as a zoo model's."""
    if data is None:
        if metric is not None:
            raise BadInput(f"--metric {metric} scores the outputs against your data's targets: add --data FILE.npz (inputs by name, and target)")
        return spec, None
    if spec.origin is None:
        raise BadInput(f"--data is for a model of your own (PATH.py:NAME); {spec.name} is checked on its card's data ({spec.dataset})")
    if calib is not None:
        raise BadInput("--data already gives int8 its calibration samples (its train split): drop --calib")
    user_data = load_user_data(data, spec.inputs, metric)
    if metric is None:
        return dataclasses.replace(spec, dataset=user_data.summary + "; no --metric: parity only"), user_data
    task = user_data.task
    return dataclasses.replace(spec, dataset=user_data.summary, task=f"user model scored by {metric}", metric_name=metric,
                               load_data=lambda _shape: task), user_data


def _int8_bound(spec: ModelSpec, ref: Reference, max_drop: float | None) -> tuple[ModelSpec, manifest_types.Int8Bound]:
    """What every int8 artifact is held to, and how that was set: --max-drop, the model card, a
    user's metric's default (edgezoo.metrics.default_int8_drop), or without a task metric the
    cosine of its outputs to torch's."""
    tol = spec.tolerance
    if ref.metric is None or ref.data is None or not ref.data.scored_by_outputs and ref.rollout is None:
        return spec, manifest_types.Int8Bound(None, tol.int8_min_cosine, "no task metric: mean cosine of the outputs to torch's")
    if max_drop is not None:
        how = "--max-drop"
    elif spec.origin is not None:
        drop, how = default_int8_drop(spec.metric_name, ref.metric)
        spec = dataclasses.replace(spec, tolerance=dataclasses.replace(tol, int8_metric_drop=drop))
    else:
        how = "the model card"
    return spec, manifest_types.Int8Bound(spec.tolerance.int8_metric_drop, None, how)


def _make_artifacts(chosen, precisions, spec: ModelSpec, net, ref: Reference, calib_set, out_dir: Path, threads: int,
                    timeout_s: float, isolate: bool, sel: Selection | None = None, qat_net=None) -> tuple[list[Artifact], list[str], dict]:
    """Every chosen format and precision, converted in a child process per format, made in a
    staging folder and moved into ``out_dir`` once complete: (the rows, the log's lines for what
    failed, each landed file's runner in this process).

    The formats go side by side, a thread each driving its own child (the converters work in the
    children, so the threads mostly wait), and fp32 before int8 within a format (int8 starts from
    the fp32 file). Timing comes after all are made (``_latencies``), not during."""
    log_lines: list[str] = []
    runners: dict = {}
    staging = Path(tempfile.mkdtemp(dir=out_dir, prefix=outdir.STAGING_PREFIX))
    stop = threading.Event()
    try:
        job = write_job(net, *_builder_name(spec), ref.inputs[0], [i.name for i in spec.inputs],
                        [f"output{i}" if ref.n_outputs > 1 else "output" for i in range(ref.n_outputs)], calib_set, staging, threads, qat_net)
        steps = {fmt.name: child_for(fmt.name, job, timeout_s) if isolate else InProcess(job) for fmt in chosen}
        for child in steps.values():
            child.start()  # all at once: their imports overlap
        with progress.bar(f"{spec.name}: convert and check {', '.join(f.name for f in chosen)}", total=len(chosen) * len(precisions)) as advance:

            def one_format(fmt) -> list[Artifact]:
                made, fp32_path = [], None
                for precision in precisions:
                    if stop.is_set():
                        raise KeyboardInterrupt  # the export is being stopped: start nothing new
                    final = out_dir / fmt.file_name(spec.name, precision)
                    row = _make_artifact(fmt, precision, steps[fmt.name], staging / final.name, fp32_path, spec, ref, threads, log_lines, sel, stop)
                    runner = row.pop("runner", None)
                    if row.get("all_int8_runner") is not None:
                        runners[fmt.name, ALL_INT8] = row["all_int8_runner"]
                    row.pop("all_int8_runner", None)
                    if row.pop("landed", False):
                        for f in fmt.files(staging / final.name):
                            os.replace(f, out_dir / f.name)
                        row["path"] = final.name
                        runners[fmt.name, precision] = runner
                    else:
                        # An earlier run's file at this path (edgezoo's: claimed() checked) no
                        # longer matches the manifest.
                        for f in fmt.files(final):
                            f.unlink(missing_ok=True)
                    if precision == "fp32" and row["stage"] == "done":
                        fp32_path = out_dir / final.name
                    made.append(artifact_from(row))
                    _print_row(made[-1])
                    advance(1, f"{fmt.name} {precision}")
                return made

            if not isolate or len(chosen) == 1:  # in-process converters share one interpreter: one at a time
                per_format = [one_format(fmt) for fmt in chosen]
            else:
                pool = ThreadPoolExecutor(len(chosen), thread_name_prefix="edgezoo-format")
                futures = [pool.submit(one_format, fmt) for fmt in chosen]
                try:
                    per_format = [f.result() for f in futures]
                except BaseException:
                    # Ctrl-C, SIGTERM or a bug: no new step starts, every child is killed (which
                    # ends each thread's wait on it), and the threads are gone before staging is.
                    stop.set()
                    for child in steps.values():
                        child.close()
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
                pool.shutdown()
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [row for made in per_format for row in made], log_lines, runners


def _latencies(net, runners: dict, ref: Reference, threads: int) -> dict:
    """torch's and every landed file's latency at ``threads``, measured after all files are made,
    in interleaved rounds (edgezoo bench goes further: a process per file and runtime)."""
    measured = {"torch": torch_runner(net), **{key: r for key, r in runners.items() if r is not None}}
    with torch_threads(threads):  # the caller's own thread count stays as it was
        return measure_interleaved(measured, ref.inputs[0])


def default_out(spec: ModelSpec, prune: float | None = None) -> Path:
    """Where an export goes without --out."""
    return Path("edgezoo-out") / (spec.name if prune is None else f"{spec.name}-pruned{round(prune * 100)}")


def _model_source(spec: ModelSpec, weights, weights_source: str, weights_sha256: str | None) -> manifest_types.ModelSource | None:
    """How to rebuild the exported model: from the file its weights came from (a given --weights
    or the cached checkpoint); None for initial weights, which no file holds."""
    if weights_sha256 is None:
        return None
    builder, kwargs, from_file, architecture = _builder_name(spec)
    if from_file:  # PATH.py:Class, the path made absolute: a reader may run elsewhere
        path, cls = builder.rsplit(":", 1)
        builder = f"{Path(path).resolve()}:{cls}"
    return manifest_types.ModelSource(builder, kwargs, str(Path(weights).resolve()) if weights is not None else weights_source, from_file, architecture)


def _builder_name(spec: ModelSpec) -> tuple[str, dict, bool, dict | None]:
    """(the builder as a child imports it, its keyword arguments, whether it is a user's
    PATH.py:Class, a pruned model's architecture)."""
    if spec.origin is not None:
        return spec.origin, dict(spec.build_kwargs), True, spec.architecture
    return name_of(spec.builder), dict(spec.build_kwargs), False, spec.architecture


def _make_artifact(fmt, precision, child: ConverterChild, staged: Path, fp32_path, spec, ref: Reference, threads, log_lines,
                   sel: Selection | None = None, stop: threading.Event | None = None) -> dict:
    row: dict = {"format": fmt.name, "precision": precision, "path": None, "bytes": None, "sha256": None, "status": "failed",
                 "metric": None, "metric_delta": None, "agreement": None, "max_abs_diff": None, "rel_error": None, "cosine": None,
                 "latency_ms": None, "runtime": fmt.runtime, "precision_ran": None, "int8_scheme": None, "scheme": None, "error": None, "failure": None, "stage": "convert"}
    t0 = time.perf_counter()
    try:  # in the format's child process: a converter that dies or hangs fails this row only
        if precision == "fp32":
            row["scheme"] = child.convert(fmt.export_fp32, staged) or "fp32"
        else:
            if fp32_path is None:
                raise StepFailed("RuntimeError", f"needs the fp32 {fmt.name} artifact, which could not be made", "")
            row["int8_scheme"] = spec.int8_scheme_for(fmt.name)
            if sel is None:
                row["scheme"] = child.convert(fmt.quantize_int8, fp32_path, staged, row["int8_scheme"])
            else:
                row["scheme"], row["accuracy_aware"], row["all_int8_runner"] = _int8_keeping_float(fmt, child, fp32_path, staged, spec, ref, sel, threads, stop)
        row["int8_fraction"] = round(child.call(fmt.int8_fraction, staged), 4)
    except (StepFailed, StepCrashed) as exc:  # a converter's failure is a failed row, not a dead tool
        crashed = isinstance(exc, StepCrashed)
        row["error"] = f"{fmt.converter(precision)} {exc}" if crashed else f"{fmt.converter(precision)} failed: {exc.kind}: {one_line(exc)}"
        row["failure"] = (FailureKind.CRASH if crashed else FailureKind.CONVERT).value
        log_lines.append(f"== {fmt.name} {precision}: {row['error']}\n" + ("" if crashed else exc.trace))
        return row
    files = fmt.files(staged)
    row["bytes"] = sum(f.stat().st_size for f in files)
    row["files"] = [{"path": f.name, "bytes": f.stat().st_size, "sha256": sha256_file(f)} for f in files]
    row["sha256"] = row["files"][0]["sha256"]  # files[0] is the main file
    row["convert_s"] = round(time.perf_counter() - t0, 2)
    row["stage"] = "check"
    try:
        # Loaded and run once in the child first: a runtime that dies on the file fails this row.
        child.probe(fmt.runner, staged, threads, ref.inputs[0])
        runner = fmt.runner(staged, threads)
        row["precision_ran"] = ran_as(precision, runner.precision)
        row["runtime_detail"] = runner.detail
        row["notes"] = _input_notes(runner, spec, fmt)
        measured = measure_artifact(runner, ref)
        row.update(measured.row_fields())
        # Layers --max-drop kept float were asked for: their share of 8-bit constants is reported, not bounded.
        aware = row.get("accuracy_aware")
        fraction = None if aware and aware["kept_float"] else row["int8_fraction"]
        failure = judge_artifact(measured, ref, precision, spec, int8_fraction=fraction)
        if failure is None:
            row.update(status="ok", error=None)
        else:
            row.update(status="failed", error=failure.message, failure=failure.kind.value)
        row["runner"] = runner
    except Exception as exc:
        crashed = isinstance(exc, StepCrashed)
        kind = exc.kind if isinstance(exc, StepFailed) else type(exc).__name__
        row["status"] = "failed"
        row["failure"] = (FailureKind.CRASH if crashed else FailureKind.RUN).value
        row["error"] = f"{fmt.runtime} {exc}" if crashed else f"{fmt.runtime} could not run the artifact: {kind}: {one_line(exc)}"
        log_lines.append(f"== {fmt.name} {precision}: {row['error']}\n" + (exc.trace if isinstance(exc, StepFailed) else "".join(traceback.format_exception(exc))))
        return row
    # A complete artifact that misses its bound still lands (to inspect), flagged failed.
    row["landed"] = True
    row["stage"] = "done"
    return row


def _input_notes(runner, spec: ModelSpec, fmt) -> list[str]:
    """What the file declares otherwise than torch's inputs: a dtype its format cannot express
    (litert-torch stores int64 as int32), names the converter did not keep."""
    notes = []
    declared = runner.inputs
    for want, (name, _shape, dtype) in zip(spec.inputs, declared):
        if dtype != want.dtype:
            notes.append(f"input {want.name} is {dtype} in this file ({want.dtype} in torch): {fmt.label} feeds it as {dtype}")
    names = [d[0] for d in declared]
    if declared and names != [i.name for i in spec.inputs]:
        notes.append(f"input names in this file: {', '.join(names)} (torch's: {', '.join(i.name for i in spec.inputs)}), in the same order")
    return notes


ALL_INT8 = "int8-all"  # the runners' key of full int8, measured beside an accuracy-aware int8 file


def _int8_keeping_float(fmt, child, fp32_path: Path, staged: Path, spec: ModelSpec, ref: Reference, sel: Selection, threads: int,
                        stop: threading.Event | None = None):
    """Accuracy-aware int8 for one format (edgezoo.accuracy_aware decides): every trial quantized in
    the format's child, probed there, then measured here on the selection split. The decided file
    is left at ``staged``. Returns (the quantizer's note, the manifest entry, full int8's runner
    when layers were kept float)."""
    if fmt.int8_layers is None:
        raise StepFailed("NotSupported", f"{fmt.name} offers no accuracy-aware int8 (--max-drop): its quantizer cannot keep layers float", "")
    trials = staged.parent / f"trials-{fmt.name}"
    trials.mkdir(exist_ok=True)
    made: list = []  # (path, note, runner) per trial

    def trial(keep: tuple[str, ...]) -> Score | None:
        if stop is not None and stop.is_set():
            raise KeyboardInterrupt  # the export is being stopped: no further trial (its child would start again)
        path = trials / f"trial{len(made)}{fmt.suffix}"
        try:
            note = child.convert(fmt.quantize_int8, fp32_path, path, "static", keep)
        except (StepFailed, StepCrashed):
            if not keep:
                raise  # full int8 cannot be made at all: the row fails as without --max-drop
            made.append((path, None, None))
            return None
        try:  # a runtime that dies on a trial fails the trial only (keeping a layer float may avoid it)
            child.probe(fmt.runner, path, threads, ref.inputs[0])
            runner = fmt.runner(path, threads)
            score = selection_score(runner, sel)
        except Exception:
            runner, score = None, None
        made.append((path, note, runner))
        if len(made) > 2:  # neither full int8 nor the latest: its file and loaded model are not needed again
            for f in fmt.files(made[-2][0]):
                f.unlink(missing_ok=True)
            made[-2] = (made[-2][0], made[-2][1], None)
        return score

    def say(note: str) -> None:
        progress.info(f"{spec.name} {fmt.name} int8 --max-drop: {note}")

    decision = keep_fewest_float(trial, lambda: child.convert(fmt.int8_layers, fp32_path, made[0][0]), sel, spec.tolerance.int8_metric_drop, say)
    path, note, _ = made[-1]
    if note is None:
        raise StepFailed("RuntimeError", f"int8 keeping {len(decision.kept_float)} layers float could not be made", "")
    for f, to in zip(fmt.files(path), fmt.files(staged)):
        os.replace(f, to)
    entry = dataclasses.asdict(manifest_types.AccuracyAware(spec.tolerance.int8_metric_drop, sel.source, decision.candidates, decision.kept_float,
                                                            sel.metric, decision.all_int8_metric, decision.metric, decision.met, decision.trials,
                                                            all_int8_changed=decision.all_int8_changed, changed=decision.changed))
    shutil.rmtree(trials, ignore_errors=True)
    return note, entry, made[0][2] if decision.kept_float else None


def _bar_entry(spec: ModelSpec, data, metric: float | None) -> Bar | None:
    bar = spec.bar(data)
    if bar is None or metric is None:
        return None
    measure = data.measure
    return Bar(bar[0], bar[1], "at least" if measure.higher_is_better else "at most", measure.clears(metric, bar[0]))


def _print_row(row: Artifact) -> None:
    if row.ok:
        if not progress.quiet():
            progress.status("  ok    ", "green", f"{row.format:<9} {row.precision:<5} {row.path}")
    else:
        progress.status("  FAILED", "bold red", f"{row.format:<9} {row.precision:<5} {row.error}")


def _versions(formats: Sequence[Format]) -> dict:
    return versions(["edgezoo", "torch", "numpy"] + [p for f in formats for p in f.packages])


