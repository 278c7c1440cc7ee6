"""`edgezoo bench`: every artifact x runtime that can run it, measured on this host in one run.

Each (file, runtime, threads) row gets its own child process (edgezoo.devices.bench_child) that
loads only that file in only that runtime: one runtime's thread pool, allocator or caches never
skew another's figures, and the child's memory growth is the file's. The rows of one thread count
are measured interleaved: in each of ``rounds`` rounds every row runs a burst of calls in turn, so
a noisy neighbour or a clock change hits all of them alike. Latency percentiles pool every timed
call; ratios are taken round by round (each round's medians), and stated with their spread.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import progress
from .bench_results import RUNTIME_LABELS, BenchReport, BenchRow, Latency, Ratio
from .errors import BadInput, did_you_mean
from .fileio import sha256_file
from .manifest import Manifest, read_manifest

# What can run each kind of file, in the order rows are shown.
RUNTIMES_BY_SUFFIX = {".onnx": ("onnxruntime", "openvino"), ".xml": ("openvino",), ".tflite": ("litert", "litert-ref")}
FORMAT_BY_SUFFIX = {".onnx": "onnx", ".xml": "openvino", ".tflite": "tflite"}
# Where each runtime can run: --device values. A device the host lacks gives a row that says so.
DEVICES = {"cpu": ("torch", "onnxruntime", "openvino", "litert", "litert-ref"), "cuda": ("onnxruntime",), "openvino:GPU": ("openvino",)}


# ---- what to measure ----------------------------------------------------------------------------

@dataclass
class Target:
    """One file to measure (or torch eager, for a model edgezoo knows)."""

    label: str
    format: str
    precision: str
    path: Path | None
    shown_path: str | None
    bytes: int | None
    sha256: str | None
    metric: float | None
    declared: list | None              # [(name, shape, dtype, value_range)] from a manifest, else the file's own
    model: dict | None = None          # torch eager: how the child rebuilds the model


@dataclass
class Context:
    sources: list[str]
    model: str | None = None
    metric_name: str | None = None
    higher_is_better: bool | None = None
    manifest: Manifest | None = None
    folder: Path | None = None


def discover(paths: list[str | Path]) -> tuple[list[Target], Context]:
    """Export folders (their manifest's working files, and torch eager when the weights are still
    where the manifest says), folders of model files, or single .onnx/.tflite/.xml files."""
    if not paths:
        raise BadInput("no PATH given: pass export folders or .onnx/.tflite/.xml files, or --model NAME")
    targets: list[Target] = []
    ctx = Context(sources=[str(p) for p in paths])
    for given in map(Path, paths):
        given_as = str(given)
        if not given.exists():
            raise BadInput(f"{str(given)!r} does not exist: pass an export folder or an .onnx, .tflite or .xml file")
        if given.is_dir():
            manifest_path = given / "manifest.json"
            if manifest_path.is_file():
                targets += _from_manifest(read_manifest(manifest_path), given.resolve(), ctx)
                continue
            files = sorted(p for p in given.iterdir() if p.suffix in RUNTIMES_BY_SUFFIX and p.is_file())
            if not files:
                raise BadInput(f"{str(given)!r} holds no manifest.json and no .onnx, .tflite or .xml file: pass an export folder or model files")
            targets += [_from_file(p.resolve(), str(p)) for p in files]
        elif given.suffix in RUNTIMES_BY_SUFFIX:
            targets.append(_from_file(given.resolve(), given_as))
        else:
            raise BadInput(f"{str(given)!r}: edgezoo bench reads .onnx, .tflite and .xml (OpenVINO IR) files or export folders; "
                           f"convert it with edgezoo export first")
    return targets, ctx


def _from_file(path: Path, shown: str) -> Target:
    return Target(path.stem, FORMAT_BY_SUFFIX[path.suffix], "unknown", path, shown, _size(path), sha256_file(path), None, None)


def _size(path: Path) -> int:
    size = path.stat().st_size
    companion = path.with_suffix(".bin") if path.suffix == ".xml" else None  # OpenVINO IR's weights
    return size + (companion.stat().st_size if companion is not None and companion.is_file() else 0)


def _from_manifest(manifest: Manifest, folder: Path, ctx: Context) -> list[Target]:
    from .metrics import METRICS

    if ctx.manifest is not None:
        raise BadInput(f"{str(folder)!r}: bench compares one export folder at a time (its files side by side); pass one folder, "
                       "or the files themselves")
    ctx.manifest, ctx.folder, ctx.model = manifest, folder, manifest.model
    ctx.metric_name = manifest.reference.metric_name
    measure = METRICS.get(manifest.reference.metric_name)
    ctx.higher_is_better = None if measure is None else measure.higher_is_better
    declared = [(i.name, list(i.shape), i.dtype, i.value_range) for i in manifest.inputs]
    targets = []
    torch_model = _torch_source(manifest)
    if torch_model is not None:
        targets.append(Target("torch fp32", "torch", "fp32", None, None, None, manifest.weights_sha256, manifest.reference.metric,
                              declared, torch_model))
    for a in manifest.artifacts:
        if not a.ok or a.path is None:
            continue
        path = folder / a.path
        if not path.is_file():
            raise BadInput(f"{str(path)!r} is listed in {str(folder / 'manifest.json')!r} but is not there: export again")
        targets.append(Target(f"{a.format} {a.precision}", a.format, a.precision, path, a.path, a.bytes, a.sha256, a.metric, declared))
    return targets


def _torch_source(manifest: Manifest) -> dict | None:
    """How to rebuild the exported torch model, when the manifest says and its weights are still
    the ones it names (same sha256)."""
    src = manifest.source
    if src is None or manifest.weights_sha256 is None:
        return None
    weights = Path(src.weights)
    if not weights.is_file() or sha256_file(weights) != manifest.weights_sha256:
        return None
    return {"builder": src.builder, "kwargs": src.kwargs, "weights": str(weights), "from_file": src.from_file, "architecture": src.architecture}


# ---- measuring ----------------------------------------------------------------------------------

@dataclass
class _Plan:
    target: Target
    runtime: str
    device: str
    threads: int
    row: BenchRow
    child: object = None
    calls: int = 0
    rounds: list = field(default_factory=list)


def available(device: str) -> str | None:
    """None when ``device`` can run here, else why not, as the row says it."""
    if device == "cpu":
        return None
    if device == "cuda":
        import onnxruntime as ort

        if "CUDAExecutionProvider" not in ort.get_available_providers():
            return "not available on this host (ONNX Runtime has no CUDAExecutionProvider: a CUDA GPU and the onnxruntime-gpu build are needed)"
        return None
    if device.startswith("openvino:"):
        import openvino as ov

        name = device.split(":", 1)[1]
        if name not in ov.Core().available_devices:
            return f"not available on this host (OpenVINO sees {', '.join(ov.Core().available_devices)}, no {name})"
        return None
    return f"unknown device {device!r}"


def check_threads(threads: list[int]) -> list[int]:
    cores = os.cpu_count() or 1
    bad = [t for t in threads if not 1 <= t <= cores]
    if bad or not threads:
        raise BadInput(f"--threads {','.join(map(str, threads)) or '(none)'}: this host has {cores} cores; pass counts from 1 to {cores}, e.g. 1,{cores}")
    return sorted(set(threads))


def check_devices(devices: list[str]) -> list[str]:
    """Host devices (DEVICES) are measured; a device profile's name (devices/profiles/) is estimated;
    ssh://[user@]host[:port] is measured on that device (devices/remote.py)."""
    from .devices.estimate import profile_names
    from .devices.remote import parse

    known = list(DEVICES) + profile_names()
    for d in devices:
        if d.startswith("ssh://"):
            parse(d)
            continue
        if d == "adb" or d.startswith("adb:"):
            from .devices.adb import parse_device

            parse_device(d)
            continue
        if d not in known:
            raise BadInput(f"--device {d!r} is not one edgezoo knows: {did_you_mean(d, known)}pass one of {', '.join(DEVICES)} (measured here), "
                           f"ssh://[user@]host[:port] or adb[:SERIAL] (measured there) or a device profile, {', '.join(profile_names())} (estimated)")
    return list(dict.fromkeys(devices))


def _estimate_rows(target: Target, device: str, threads: list[int], runtimes: list[str] | None) -> list[BenchRow]:
    """Rows for a device edgezoo cannot reach: its profile's estimate for each thread count."""
    from .devices.estimate import estimate, load_profile

    if target.path is None or target.path.suffix not in (".onnx", ".tflite"):
        return []
    profile = load_profile(device)
    runtime = RUNTIMES_BY_SUFFIX[target.path.suffix][0]
    if runtimes is not None and runtime not in runtimes:
        return []
    precision = target.precision if target.precision in ("fp32", "int8") else "fp32"
    fits = [t for t in threads if t <= profile["cores"]]
    estimates = {e.threads: e for e in estimate(target.path, device, runtime, precision, fits)} if fits else {}
    rows = []
    for t in threads:
        row = BenchRow(target.label, target.format, precision, runtime, device, t, "estimated", target.shown_path, target.sha256,
                       target.bytes, metric=target.metric)
        e = estimates.get(t)
        if e is None:
            row.status, row.error = "unavailable", f"{profile['title']} has {profile['cores']} cores for this; pass --threads up to {profile['cores']}"
        else:
            row.estimated_ms, row.roofline_ms, row.estimate_basis = e.latency_ms, e.roofline_ms, e.basis
            if e.latency_ms is None:
                row.status, row.error = "unavailable", f"no estimate: {e.basis}"
        rows.append(row)
    return rows


def bench(paths: list[str | Path], threads: list[int] = (1, 2), devices: list[str] = ("cpu",), runtimes: list[str] | None = None,
          rounds: int = 5, seconds_per_row: float = 2.0, input_shapes: list[list[int]] | None = None, timeout: float = 600.0,
          remote_runs: int = 50, remote_python: str = "python3", benchmark_binary: str | None = None) -> BenchReport:
    from .hostinfo import host, versions

    devices = check_devices(list(devices))
    if any(d in DEVICES for d in devices):
        threads = check_threads(list(threads))
    elif not threads or min(threads) < 1:
        raise BadInput(f"--threads {','.join(map(str, threads)) or '(none)'}: pass counts from 1 up to the device's cores")
    threads = sorted(set(threads))
    if rounds < 1:
        raise BadInput(f"--rounds {rounds}: pass at least 1 (default 5)")
    if not seconds_per_row > 0:
        raise BadInput(f"--seconds {seconds_per_row}: pass a positive time per row (default 2)")
    if runtimes is not None:
        unknown = [r for r in runtimes if r not in RUNTIME_LABELS]
        if unknown:
            raise BadInput(f"--runtimes {','.join(unknown)}: pass some of {', '.join(RUNTIME_LABELS)}")
    started = time.perf_counter()
    targets, ctx = discover(paths)
    plans, estimated = [], []
    remote = [d for d in devices if d.startswith("ssh://")]
    android = [d for d in devices if d == "adb" or d.startswith("adb:")]
    for device in devices:
        if device in remote or device in android:
            continue
        if device not in DEVICES:
            for target in targets:
                estimated += _estimate_rows(target, device, threads, runtimes)
            continue
        why_not = available(device)
        for target in targets:
            names = ("torch",) if target.format == "torch" else RUNTIMES_BY_SUFFIX[target.path.suffix]
            for runtime in names:
                if runtime not in DEVICES[device] or (runtimes is not None and runtime not in runtimes):
                    continue
                for t in threads:
                    row = BenchRow(target.label, target.format, target.precision, runtime, device, t, "ok", target.shown_path, target.sha256,
                                   target.bytes, metric=target.metric)
                    if target.declared:
                        row.batch = target.declared[0][1][0] if target.declared[0][1] else None
                    if why_not is not None:
                        row.status, row.error = "unavailable", why_not
                    plans.append(_Plan(target, runtime, device, t, row))
    if not plans and not estimated and not remote and not android:
        raise BadInput("nothing to measure: no runtime in --runtimes can run these files on --device")
    live = [p for p in plans if p.row.status == "ok"]
    with progress.bar(f"bench {ctx.model or ', '.join(ctx.sources)}", total=len(live) * (rounds + 1)) as advance:
        for group in _groups(live):
            _measure_group(group, rounds, seconds_per_row, input_shapes, timeout, advance)
    measured_remotely = _remote_rows(paths, targets, remote, threads, runtimes, remote_runs, remote_python, timeout, input_shapes) if remote else []
    for device in android:
        measured_remotely += _adb_rows(targets, device, threads, remote_runs, timeout, benchmark_binary)
    rows = [p.row for p in plans] + estimated + measured_remotely
    _ratios(plans)
    _pareto(rows, ctx.higher_is_better)
    return BenchReport(ctx.sources, ctx.model, ctx.metric_name, ctx.higher_is_better, host(), versions(["edgezoo", "numpy", "onnxruntime", "openvino", "ai-edge-litert", "torch"]),
                       devices, threads, rounds, seconds_per_row, round(time.perf_counter() - started, 1), rows)


def _remote_rows(paths, targets: list[Target], devices: list[str], threads: list[int], runtimes: list[str] | None, runs: int, python: str,
                 timeout: float, input_shapes: list[list[int]] | None = None) -> list[BenchRow]:
    """Each ssh device measures the export's rpi bundle (run.py bench), or for a file edgezoo did
    not make the file with run.py, devices in parallel, each one run at a time. A device that fails
    gives failed rows saying why; what it measured first stays."""
    import tempfile
    from concurrent.futures import ThreadPoolExecutor

    from .devices.bundle import make_bundle, make_file_bundle
    from .devices.remote import DeviceError, bench_on, parse

    folders = [Path(p) for p in paths if Path(p).is_dir() and (Path(p) / "manifest.json").is_file()]
    loose = [t.path for t in targets if t.path is not None and t.precision == "unknown" and t.path.suffix in (".onnx", ".tflite")]
    by_file = {t.path.name: t for t in targets if t.path is not None}
    if runs < 1:
        raise BadInput(f"--remote-runs {runs}: pass at least 1")
    with tempfile.TemporaryDirectory(prefix="edgezoo-remote-") as tmp:
        bundles = [make_bundle(folder, "rpi", out=Path(tmp) / f"b{k}").out for k, folder in enumerate(folders)]
        bundles += [make_file_bundle(f, Path(tmp) / f"f{k}", input_shapes, timeout=timeout) for k, f in enumerate(loose)]

        def one(device: str) -> list[BenchRow]:
            ssh = parse(device)
            said: list[dict] = []
            error = None
            try:
                for b in bundles:
                    bench_on(ssh, b, runs, threads, timeout, python, rows=said)
            except DeviceError as exc:
                error = str(exc)
            rows = [_remote_row(r, device, by_file.get(r["file"])) for r in said if runtimes is None or r["runtime"] in runtimes]
            if error is not None:
                rows.append(BenchRow("device", "-", "-", "-", device, 0, "failed", error=error))
            return rows

        with progress.bar(f"bench on {', '.join(devices)}", total=len(devices)) as advance, ThreadPoolExecutor(len(devices)) as pool:
            out = []
            for rows in pool.map(one, devices):
                out += rows
                advance(1)
            return out


def _adb_rows(targets: list[Target], device: str, threads: list[int], runs: int, timeout: float, binary: str | None) -> list[BenchRow]:
    """LiteRT's benchmark_model on an Android device, each .tflite file at each thread count."""
    from .devices.adb import bench_on
    from .devices.remote import DeviceError

    tflite = [t for t in targets if t.path is not None and t.path.suffix == ".tflite"]
    if not tflite:
        raise BadInput(f"--device {device}: benchmark_model runs .tflite files, and none was given")
    by_name = {t.path.name: t for t in tflite}
    said: list[dict] = []
    error = None
    with progress.step(f"bench on {device} (benchmark_model)"):
        try:
            bench_on(device, [t.path for t in tflite], threads, runs, timeout, binary, rows=said)
        except DeviceError as exc:
            error = str(exc)
    rows = []
    for r in said:
        t = by_name[r["file"]]
        row = BenchRow(t.label, t.format, t.precision, "litert", device, r["threads"], r["status"], t.shown_path, t.sha256, t.bytes,
                       metric=t.metric, error=r.get("error"))
        if r["status"] == "ok":
            p50 = r.get("median_us", r["avg_us"]) / 1e3
            row.latency = Latency(p50, None, None, r["avg_us"] / 1e3, r.get("runs", runs), [p50])
            row.load_s = r["init_us"] / 1e6
            row.first_call_ms = r["first_us"] / 1e3
            row.throughput_per_s = round(1e3 / p50, 2) if p50 > 0 else None
        row.detail = {**{k: v for k, v in r.items() if k not in ("file", "threads", "status", "error")},
                      "measured": "on the device by LiteRT's benchmark_model over adb; p50 is its median where it prints one, else its mean"}
        rows.append(row)
    if error is not None:
        rows.append(BenchRow("device", "-", "-", "-", device, 0, "failed", error=error))
    return rows


def _remote_row(r: dict, device: str, target: Target | None) -> BenchRow:
    label = target.label if target is not None else f"{r.get('format', '?')} {r.get('precision', '?')}"
    row = BenchRow(label, r.get("format", "?"), r.get("precision", "?"), r.get("runtime", "?"), device, int(r.get("threads", 1)),
                   r["status"], r.get("file"), target.sha256 if target else None, target.bytes if target else None,
                   metric=target.metric if target else None, error=r.get("error"))
    if r["status"] == "ok":
        row.load_s = r["load_ms"] / 1e3
        row.latency = Latency(r["p50_ms"], r["p90_ms"], r["p99_ms"], r["mean_ms"], r["runs"], [r["p50_ms"]])
        row.throughput_per_s = r.get("throughput_per_s")
    row.detail = {"device": r.get("device"), "versions": r.get("versions"), "peak_rss_mb": r.get("peak_rss_mb"),
                  "measured": "on the device over ssh (run.py bench: one process per file, sequential runs)"}
    return row


def _groups(plans: list[_Plan]) -> list[list[_Plan]]:
    """Rows compared with each other are measured together: same threads, same device."""
    groups: dict[tuple, list[_Plan]] = {}
    for p in plans:
        groups.setdefault((p.threads, p.device), []).append(p)
    return list(groups.values())


def _measure_group(group: list[_Plan], rounds: int, seconds_per_row: float, input_shapes, timeout: float, advance) -> None:
    from .devices import bench_child
    from .devices.runners import ran_as
    from .export.child import ConverterChild, StepCrashed, StepFailed

    for p in group:  # all start at once: their imports overlap, and nothing is timed yet
        p.child = ConverterChild(timeout_s=timeout, entry="edgezoo.devices.bench_child:serve")
        p.child.start()
    for p in group:  # imported (so that a pause never lands inside an import that load would then time)
        p.child.call(bench_child.ready)
    # Only the row being timed runs: the others are stopped (SIGSTOP), since a runtime's threads
    # spin for a while after each call (OpenMP, ONNX Runtime's pool) and would take the cores
    # from a sibling (measured: torch eager at 2 threads 39x slower with ten idle siblings).
    for p in group:
        p.child.pause()
    try:
        for p in group:  # loading is timed, so one at a time
            try:
                with _running(p.child):
                    loaded = p.child.call(bench_child.load, p.runtime, str(p.target.path) if p.target.path else None, p.threads, p.device,
                                          p.target.declared, input_shapes, p.target.model)
                    warm = p.child.call(bench_child.burst, 3)
            except (StepFailed, StepCrashed) as exc:
                _fail(p, exc)
                advance(rounds + 1)
                continue
            p.row.load_s, p.row.first_call_ms = round(loaded["load_s"], 4), loaded["first_call_ms"]
            p.row.precision_ran, p.row.detail, p.row.inputs = ran_as(p.row.precision, loaded["precision"]), loaded["detail"], loaded["inputs"]
            if p.row.batch is None and loaded["inputs"] and loaded["inputs"][0][0].isdigit():
                p.row.batch = int(loaded["inputs"][0].split()[0].split("x")[0])
            per_call = max(statistics.median(warm), 1e-3) / 1e3
            p.calls = max(2, min(100_000, int(seconds_per_row / rounds / per_call)))
            advance(1, p.row.key)
        for r in range(rounds):
            order = [p for p in group if p.row.ok]
            shift = r % len(order) if order else 0
            for p in order[shift:] + order[:shift]:  # who goes first rotates
                if not p.row.ok:
                    continue
                try:
                    with _running(p.child):
                        p.child.call(bench_child.burst, 1)  # untimed: caches and threads wake from the pause
                        p.rounds.append(p.child.call(bench_child.burst, p.calls))
                except (StepFailed, StepCrashed) as exc:
                    _fail(p, exc)
                advance(1, f"round {r + 1}/{rounds}")
        for p in group:
            if p.row.ok:
                try:
                    with _running(p.child):
                        p.row.peak_rss_growth_bytes = p.child.call(bench_child.memory)["peak_rss_growth_bytes"]
                except (StepFailed, StepCrashed) as exc:
                    _fail(p, exc)
                    continue
                _summarise(p)
    finally:
        for p in group:
            p.child.close()


@contextlib.contextmanager
def _running(child):
    child.resume()
    try:
        yield
    finally:
        child.pause()


def _fail(p: _Plan, exc: Exception) -> None:
    """A row that failed says which runtime and why, in one line; what it measured is dropped."""
    from .errors import one_line
    from .export.child import StepFailed

    said = f"{exc.kind}: {one_line(exc)}" if isinstance(exc, StepFailed) else one_line(exc)
    p.row.status, p.row.error = "failed", f"{RUNTIME_LABELS[p.runtime]} could not run it: {said}"
    p.rounds = []


def _percentile(sorted_times: list[float], q: float) -> float:
    i = q * (len(sorted_times) - 1)
    lo = int(i)
    hi = min(lo + 1, len(sorted_times) - 1)
    return sorted_times[lo] + (sorted_times[hi] - sorted_times[lo]) * (i - lo)


def _summarise(p: _Plan) -> None:
    times = sorted(t for burst in p.rounds for t in burst)
    p.row.latency = Latency(_percentile(times, 0.5), _percentile(times, 0.9), _percentile(times, 0.99), statistics.fmean(times), len(times),
                            [statistics.median(b) for b in p.rounds])
    if p.row.batch:
        p.row.throughput_per_s = p.row.batch * 1e3 / p.row.latency.mean_ms


def _ratio(row: BenchRow, base: BenchRow, against: str) -> Ratio | None:
    if not (row.ok and base.ok and row.latency and base.latency) or len(row.latency.round_p50_ms) != len(base.latency.round_p50_ms):
        return None
    per_round = [b / r for r, b in zip(row.latency.round_p50_ms, base.latency.round_p50_ms)]
    return Ratio(against, statistics.median(per_round), min(per_round), max(per_round))


def _ratios(plans: list[_Plan]) -> None:
    rows = [p.row for p in plans]
    for row in rows:
        same = [r for r in rows if (r.threads, r.device) == (row.threads, row.device)]
        torch_row = next((r for r in same if r.runtime == "torch"), None)
        if torch_row is not None and row is not torch_row:
            row.vs_torch = _ratio(row, torch_row, torch_row.key)
        if row.precision == "int8":
            fp32 = next((r for r in same if (r.format, r.runtime, r.precision) == (row.format, row.runtime, "fp32")), None)
            if fp32 is not None:
                row.vs_fp32 = _ratio(row, fp32, fp32.key)


def _pareto(rows: list[BenchRow], higher_is_better: bool | None) -> None:
    """On the front: no other row (same threads and device) is at least as fast and at least as
    good, and better in one of the two."""
    if higher_is_better is None:
        return
    sign = 1 if higher_is_better else -1
    scored = [r for r in rows if r.ok and r.latency and r.metric is not None]
    for r in scored:
        rivals = [o for o in scored if o is not r and (o.threads, o.device) == (r.threads, r.device)]
        r.on_pareto_front = not any(o.latency.p50_ms <= r.latency.p50_ms and sign * o.metric >= sign * r.metric
                                    and (o.latency.p50_ms < r.latency.p50_ms or sign * o.metric > sign * r.metric) for o in rivals)
