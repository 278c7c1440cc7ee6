"""`edgezoo bundle`: a folder that runs on the device with nothing but its runtime.

From an export folder (its manifest and files, each checked against the manifest's sha256): the
target's artifacts, `run.py` and `portable.py` (numpy and the runtime only), `bundle.json` (what is
there: files and hashes, the inputs and their preprocessing as data, each file's quantization,
labels), a few seeded sample inputs and, per file, the outputs this host's runtime gives for them,
which `run.py check` on the device compares with (fp32 within 1e-4 relative, int8 within one
quantization step).

The expected outputs come from the same `portable.py` the device runs, in a child process (the
house's wall: a runtime that dies fails the bundle in one line, not edgezoo). The bundle is built
in a staging folder beside ``out`` and renamed into place: a stopped run leaves no half bundle.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
import sys
import tempfile
import typing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import BadInput, one_line
from ..fileio import sha256_file, write_text_atomic
from ..manifest import Artifact, InputEntry, Manifest, read_manifest
from . import portable

BUNDLE_VERSION = 1
BUNDLE_FILE = "bundle.json"
RUNTIME_OF = {"onnx": "onnxruntime", "tflite": "litert"}


@dataclass(frozen=True)
class BundleTarget:
    name: str
    title: str
    formats: tuple[str, ...]
    runtimes: str          # what the device needs, as a pip line
    precisions: tuple[str, ...] = ("fp32", "int8")


TARGETS = {
    "rpi": BundleTarget("rpi", "Raspberry Pi (64-bit OS) or another ARM Linux board", ("tflite", "onnx"),
                        "pip install numpy ai-edge-litert onnxruntime (either runtime alone runs its own files)"),
    "android": BundleTarget("android", "Android (an app's assets; run.py where the phone has Python)", ("tflite",),
                            "the app's LiteRT (com.google.ai.edge.litert); for run.py: pip install numpy ai-edge-litert"),
    "mcu": BundleTarget("mcu", "a microcontroller with TensorFlow Lite Micro (full-integer int8)", ("tflite",),
                        "TensorFlow Lite Micro built into the firmware (model_data.cc, op_resolver.h); on a host: pip install tflite-micro",
                        precisions=("int8",)),
}


@dataclass
class BundleArtifact:
    file: str
    format: str
    precision: str
    runtime: str
    bytes: int
    sha256: str
    expected: str                       # the .npz of expected outputs, s{sample}_o{output}
    output_units: list[float | None]    # each output's quantization step where the file stores it quantized
    quantization: dict[str, typing.Any] # inputs/outputs: dtype, scale and zero point of each quantized tensor
    scheme: str | None = None
    metric: float | None = None         # the export's held-out metric for this file
    host_latency_ms: float | None = None


@dataclass
class Bundle:
    target: str
    title: str
    model: str
    description: str
    task: str
    inputs: list[InputEntry]
    samples: int
    samples_file: str
    artifacts: list[BundleArtifact]
    files: list[dict[str, typing.Any]]  # every file of the bundle but bundle.json: path, bytes, sha256
    runtimes: str
    made_on: str
    made_by: str
    labels: list[str] | None = None
    metric_name: str | None = None
    torch_metric: float | None = None
    bundle_version: int = BUNDLE_VERSION
    notes: list[str] = field(default_factory=list)
    mcu: dict[str, typing.Any] | None = None   # --target mcu: flash, arena, operators, TFLM's check (devices/mcu.py)


@dataclass
class BundleResult:
    out: Path
    bundle: Bundle


def check_target(target: str) -> BundleTarget:
    if target not in TARGETS:
        from ..errors import did_you_mean

        raise BadInput(f"--target {target!r}: {did_you_mean(target, list(TARGETS))}pass one of {', '.join(TARGETS)}")
    return TARGETS[target]


def make_bundle(source: str | Path, target: str, out: str | Path | None = None, samples: int = 3, timeout: float = 300.0) -> BundleResult:
    """The bundle of the export folder ``source`` for ``target``, written to ``out`` (default:
    ``source``-``target`` beside it)."""
    spec = check_target(target)
    if samples < 1:
        raise BadInput(f"--samples {samples}: pass at least 1")
    source = Path(source)
    manifest_path = source / "manifest.json"
    if not manifest_path.is_file():
        raise BadInput(f"{str(source)!r} holds no manifest.json: pass an export folder (edgezoo export --model NAME --int8 makes one), or --model NAME")
    manifest = read_manifest(manifest_path)
    chosen = [a for a in manifest.artifacts if a.format in spec.formats and a.precision in spec.precisions and a.ok]
    if not chosen:
        made = ", ".join(f"{a.format} {a.precision} ({a.status})" for a in manifest.artifacts) or "nothing"
        raise BadInput(f"{str(source)!r} has no checked {' or '.join(spec.formats)} file for --target {target} (it holds {made}): "
                       f"export with --formats {','.join(spec.formats)}{' --int8-scheme static' if spec.name == 'mcu' else ''}")
    for a in chosen:
        _check_hashes(source, a)
    out = Path(out) if out is not None else source.parent / f"{source.name}-{target}"
    if out.resolve() == source.resolve():
        raise BadInput(f"--out {str(out)!r} is the export folder itself: pass another folder for the bundle")
    out.parent.mkdir(parents=True, exist_ok=True)
    with _locked(out):
        _refuse_foreign(out)
        for stale in out.parent.glob(f".{out.name}.staging-*"):  # a killed run's: under the lock, no live run owns one
            shutil.rmtree(stale, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, 0o777 & ~umask)  # mkdtemp's 0700 would stay the bundle's
        try:
            bundle = _build(staging, source, manifest, chosen, spec, samples, timeout)
            _swap_into_place(staging, out)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return BundleResult(out, bundle)


@contextlib.contextmanager
def _locked(out: Path):
    """One bundle into ``out`` at a time: a second is refused in one line (the kernel drops the
    lock when its holder dies, kill -9 included)."""
    lock = out.parent / f".{out.name}.lock"
    fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BadInput(f"--out {str(out)!r}: another edgezoo bundle is writing there now: wait for it, or pass another --out") from None
        yield
    finally:
        os.close(fd)
        lock.unlink(missing_ok=True)


def _check_hashes(source: Path, a: Artifact) -> None:
    for entry in a.files or []:
        path = source / entry.path
        if Path(entry.path).is_absolute() or ".." in Path(entry.path).parts:
            raise BadInput(f"manifest in {str(source)!r} names {entry.path!r}, outside its folder: export again")
        if not path.is_file():
            raise BadInput(f"{str(path)!r} is missing (the manifest lists it): export again")
        if sha256_file(path) != entry.sha256:
            raise BadInput(f"{str(path)!r} changed since its export (sha256 differs from the manifest's): export again")


def _refuse_foreign(out: Path) -> None:
    """``out`` may be new, empty, or an earlier bundle (which this one replaces); anything else is the user's."""
    if not out.exists():
        return
    if not out.is_dir():
        raise BadInput(f"--out {str(out)!r} is a file: pass a folder for the bundle")
    entries = list(out.iterdir())
    if entries and not (out / BUNDLE_FILE).is_file():
        raise BadInput(f"--out {str(out)!r} holds files that are not an edgezoo bundle: pass a new or empty folder")
    if entries:
        try:
            listed = {f["path"] for f in json.loads((out / BUNDLE_FILE).read_text())["files"]} | {BUNDLE_FILE}
        except (OSError, ValueError, KeyError, TypeError):
            raise BadInput(f"--out {str(out)!r} has a bundle.json edgezoo cannot read: pass a new or empty folder") from None
        extra = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and str(p.relative_to(out)) not in listed)
        if extra:
            raise BadInput(f"--out {str(out)!r} holds files its bundle does not list ({', '.join(extra[:3])}): move them, or pass another folder")


def _swap_into_place(staging: Path, out: Path) -> None:
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.replace(out, old)
    os.replace(staging, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _build(staging: Path, source: Path, manifest: Manifest, chosen: list[Artifact], spec: BundleTarget, samples: int, timeout: float) -> Bundle:
    from .. import progress, __version__
    from ..hostinfo import host, int8_sums_saturate

    for a in chosen:
        for entry in a.files:
            shutil.copyfile(source / entry.path, staging / entry.path)
    shutil.copyfile(source / "manifest.json", staging / "manifest.json")
    _copy_runner(staging)

    declared = [(i.name, i.shape, i.dtype, *([i.value_range] if i.value_range else [])) for i in manifest.inputs]
    feeds = {f"s{s}_i{k}": x for s in range(samples) for k, x in enumerate(portable.seeded_inputs(declared, seed=s))}
    np.savez(staging / "samples.npz", **feeds)

    (staging / "expected").mkdir()
    with tempfile.TemporaryDirectory(prefix="edgezoo-bundle-") as tmp:
        items = [{"id": f"f{k}", "path": str(staging / a.path), "runtime": RUNTIME_OF[a.format], "samples": samples,
                  "inputs": None, "shapes": None, "feeds": str(staging / "samples.npz"), "out": str(Path(tmp) / f"f{k}.npz")}
                 for k, a in enumerate(chosen)]
        with progress.bar(f"bundle {manifest.model} for {spec.name}: expected outputs", total=len(items)) as advance:
            said = _run_here(items, Path(tmp), timeout, advance)
        rows = []
        for item, a in zip(items, chosen):
            result = said.get(item["id"], {"status": "failed", "error": "not run"})
            if result["status"] != "ok":
                raise BadInput(f"{a.path} does not run in {item['runtime']} on this host ({one_line(result.get('error', ''))}): export again, or bundle without it")
            expected = f"expected/{Path(a.path).name}.npz"
            with np.load(item["out"]) as stored:
                np.savez(staging / expected, **{k: stored[k] for k in stored.files if "_o" in k})
            rows.append(BundleArtifact(a.path, a.format, a.precision, item["runtime"], a.bytes or 0, a.sha256 or "", expected,
                                       result["output_units"], result.get("quantization") or {}, a.scheme, a.metric, a.latency_ms))

    mcu = None
    if spec.name == "mcu":
        from .mcu import write_mcu

        [art] = rows
        samples_in = [[feeds[f"s{s}_i{k}"] for k in range(len(declared))] for s in range(samples)]
        with np.load(staging / art.expected) as stored:
            litert = [[stored[f"s{s}_o{o}"] for o in range(len(art.output_units))] for s in range(samples)]
        mcu = write_mcu(staging, staging / art.file, manifest.model, samples_in, litert, art.output_units, timeout)
    if manifest.labels:
        (staging / "labels.txt").write_text("\n".join(manifest.labels) + "\n")
    files = _listing(staging)
    notes = []
    # int8-weights files compute in float: no integer kernel reaches their outputs.
    if any(a.precision == "int8" and a.format == "onnx" and a.int8_scheme != "weights" for a in chosen) and int8_sums_saturate():
        notes.append("expected outputs of the ONNX int8 files were made on an x86 CPU without VNNI, whose uint8 x int8 kernels "
                     "saturate: a device that does not saturate can differ beyond one step where a file keeps 8-bit weights")
    bundle = Bundle(spec.name, spec.title, manifest.model, manifest.description, manifest.task, manifest.inputs, samples, "samples.npz",
                    rows, files, spec.runtimes, f"{host().cpu} ({host().machine})", f"edgezoo {__version__}",
                    labels=manifest.labels, metric_name=manifest.reference.metric_name, torch_metric=manifest.reference.metric, notes=notes,
                    mcu=mcu)
    write_text_atomic(staging / BUNDLE_FILE, json.dumps(dataclasses.asdict(bundle), indent=1) + "\n")
    return bundle


def _copy_runner(folder: Path) -> None:
    """run.py and the portable.py it imports: what a bundle runs with, numpy and a runtime only."""
    here = Path(__file__).parent
    shutil.copyfile(here / "portable.py", folder / "portable.py")
    shutil.copyfile(here / "bundle_run.py", folder / "run.py")


def _run_here(items: list[dict], work: Path, timeout: float, advance=lambda n: None) -> dict:
    """portable.py's job over ``items`` in a child process of this host's Python: each file's
    outputs as the device's runner computes them."""
    from .jobs import run_job

    said, _ = run_job([sys.executable, str(Path(__file__).with_name("portable.py"))], {**os.environ, "PYTHONPATH": ""}, items, work, timeout, advance)
    return said


def _listing(folder: Path) -> list[dict]:
    return [{"path": str(p.relative_to(folder)), "bytes": p.stat().st_size, "sha256": sha256_file(p)}
            for p in sorted(folder.rglob("*")) if p.is_file()]


def read_bundle(folder: str | Path) -> Bundle:
    from .. import typed

    path = Path(folder) / BUNDLE_FILE
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BadInput(f"{str(path)!r} cannot be read ({exc}): pass a folder edgezoo bundle made") from None
    if not isinstance(data, dict) or data.get("bundle_version") != BUNDLE_VERSION:
        raise BadInput(f"{str(path)!r} is not a version {BUNDLE_VERSION} edgezoo bundle: make it again with this edgezoo")
    try:
        return typed.build(Bundle, data)
    except (TypeError, ValueError, KeyError) as exc:
        raise BadInput(f"{str(path)!r} does not follow the bundle format ({exc}): make it again") from None


def make_file_bundle(path: str | Path, out: str | Path, input_shapes: list[list[int]] | None = None, samples: int = 1,
                     timeout: float = 300.0) -> Path:
    """A bundle of one .onnx or .tflite file edgezoo did not make (no manifest): the file, run.py and
    portable.py, inputs seeded from the file's own declared inputs (dynamic dimensions from
    ``input_shapes``) and its outputs here. What `edgezoo bench FILE --device ssh://...` copies."""
    path, out = Path(path), Path(out)
    if path.suffix not in (".onnx", ".tflite"):
        raise BadInput(f"{str(path)!r}: a device runs .onnx and .tflite files; bundle an export folder for the rest")
    out.mkdir(parents=True)
    shutil.copyfile(path, out / path.name)
    _copy_runner(out)
    fmt = "onnx" if path.suffix == ".onnx" else "tflite"
    with tempfile.TemporaryDirectory(prefix="edgezoo-bundle-") as tmp:
        item = {"id": "f0", "path": str(out / path.name), "runtime": RUNTIME_OF[fmt], "samples": samples, "inputs": None,
                "shapes": input_shapes, "feeds": None, "out": str(Path(tmp) / "f0.npz")}
        said = _run_here([item], Path(tmp), timeout)
        result = said.get("f0", {"status": "failed", "error": "not run"})
        if result["status"] != "ok":
            raise BadInput(f"{path.name} does not run in {RUNTIME_OF[fmt]} here ({one_line(result.get('error', ''))}): pass --input-shape for a dynamic input")
        (out / "expected").mkdir()
        with np.load(item["out"]) as stored:
            inputs = {k: stored[k] for k in stored.files if "_i" in k}
            np.savez(out / "samples.npz", **inputs)
            np.savez(out / "expected" / f"{path.name}.npz", **{k: stored[k] for k in stored.files if "_o" in k})
    n_inputs = len([k for k in inputs if k.startswith("s0_i")])
    entries = [InputEntry(f"input{i}", list(inputs[f"s0_i{i}"].shape), inputs[f"s0_i{i}"].dtype.name) for i in range(n_inputs)]
    art = BundleArtifact(path.name, fmt, "unknown", RUNTIME_OF[fmt], path.stat().st_size, sha256_file(path), f"expected/{path.name}.npz",
                         result["output_units"], result.get("quantization") or {})
    files = _listing(out)
    from .. import __version__
    from ..hostinfo import host

    bundle = Bundle("file", "one model file", path.stem, f"{path.name} (no edgezoo manifest)", "unknown", entries, samples, "samples.npz",
                    [art], files, "pip install numpy and the file's runtime", f"{host().cpu} ({host().machine})", f"edgezoo {__version__}")
    write_text_atomic(out / BUNDLE_FILE, json.dumps(dataclasses.asdict(bundle), indent=1) + "\n")
    return out
