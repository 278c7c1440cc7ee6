"""The `edgezoo` command: parses, calls the library, prints. No logic of its own."""

from __future__ import annotations

import argparse
import sys

from .errors import BadInput, EdgezooError


def _cmd_export(args) -> int:
    from . import progress
    from .pipeline import export
    from .report import export_table
    from rich.console import Console

    result = export(args.model, int8=args.int8 or args.int8_scheme is not None or args.max_drop is not None or args.qat, formats=args.formats, out=args.out, weights=args.weights,
                    input_shape=args.input_shape, calib=args.calib, calib_samples=args.calib_samples,
                    threads=args.threads, retrain=args.retrain, int8_scheme=args.int8_scheme, timeout=args.timeout,
                    prune=args.prune, finetune_epochs=args.finetune_epochs, max_drop=args.max_drop,
                    inputs=args.input, init_args=args.init_args, data=args.data, metric=args.metric, qat=args.qat, qat_epochs=args.epochs)
    Console(width=max(160, Console().width)).print(export_table(result.manifest))
    failed = [a for a in result.manifest.artifacts if not a.ok]
    print(f"manifest: {result.manifest_path}")
    if failed:
        log = result.out_dir / "export.log"
        progress.status(f"{len(failed)} of {len(result.manifest.artifacts)} artifacts failed", "bold red",
                        "; see the table above" + (f" and {log}" if log.exists() else ""))
        return 1
    return 0


def _cmd_bench(args) -> int:
    from pathlib import Path

    from rich.console import Console

    from .bench import bench
    from .report import bench_table, write_bench
    from .usermodel import parse_input_shape

    paths = _paths_or_model(args, "export folders or .onnx/.tflite/.xml files")
    out = Path(args.out) if args.out else (Path(paths[0]) if len(paths) == 1 and Path(paths[0]).is_dir() else Path("edgezoo-bench"))
    import os

    threads = _int_list(args.threads, "--threads") if args.threads else sorted({1, min(os.cpu_count() or 1, 4)})
    report = bench(paths, threads=threads, devices=args.device.split(","),
                   runtimes=args.runtimes.split(",") if args.runtimes else None, rounds=args.rounds, seconds_per_row=args.seconds,
                   input_shapes=[list(parse_input_shape(s)) for s in args.input_shape or []], timeout=args.timeout,
                   remote_runs=args.remote_runs, remote_python=args.remote_python, benchmark_binary=args.benchmark_binary)
    written = write_bench(report, out, plots=not args.no_plots)
    Console(width=max(200, Console().width)).print(bench_table(report))
    print("wrote " + ", ".join(str(w) for w in written))
    failed = [r for r in report.rows if r.status == "failed"]
    if failed:
        from . import progress

        progress.status(f"{len(failed)} of {len(report.rows)} rows failed", "bold red", "; see the table above")
        return 1
    return 0


def _cmd_verify(args) -> int:
    from pathlib import Path

    from rich.console import Console

    from .report import verify_table, write_verify
    from .usermodel import parse_input_shape
    from .verify import verify

    paths = _paths_or_model(args, "export folders or .onnx/.tflite files")
    out = Path(args.out) if args.out else (Path(paths[0]) if len(paths) == 1 and Path(paths[0]).is_dir() else Path("edgezoo-verify"))
    report = verify(paths, arch=args.arch, cores=[c.strip() for c in args.cpu.split(",") if c.strip()], samples=args.samples,
                    input_shapes=[list(parse_input_shape(s)) for s in args.input_shape or []], timeout=args.timeout)
    written = write_verify(report, out)
    Console(width=max(200, Console().width)).print(verify_table(report))
    print("wrote " + ", ".join(str(w) for w in written))
    bad = [r for r in report.rows if not r.ok]
    if bad:
        from . import progress

        progress.status(f"{len(bad)} of {len(report.rows)} files x cores do not match this host's outputs", "bold red", "; see the table above")
        return 1
    return 0


MCU_EXPORT_SUFFIX = "-int8-tflite"  # the folder of a model's static int8 TFLite export made for a microcontroller bundle


def _cmd_bundle(args) -> int:
    from .devices.bundle import check_target, make_bundle

    target = check_target(args.target)  # before any export
    if target.name == "mcu" and args.model:
        # A microcontroller runs full-integer int8 only: the model's own TFLite export, static int8.
        args.paths.append(_exported(args.model, args.input_shape, args.timeout, args.input, args.init_args, mcu=True))
        args.model = None
    paths = _paths_or_model(args, "an export folder")
    if len(paths) != 1:
        raise BadInput(f"pass one export folder (or --model NAME), not {len(paths)}: {', '.join(paths)}")
    out = args.out
    if out is None and paths[0].endswith(MCU_EXPORT_SUFFIX):  # edgezoo-out/NAME-int8-tflite -> edgezoo-out/NAME-mcu
        out = paths[0].removesuffix(MCU_EXPORT_SUFFIX) + "-mcu"
    result = make_bundle(paths[0], args.target, out=out, samples=args.samples, timeout=args.timeout)
    b = result.bundle
    for a in b.artifacts:
        print(f"  {a.file:32s} {a.format:6s} {a.precision:5s} {a.bytes / 1e6:8.2f} MB  {a.runtime}")
    print(f"bundle for {b.title}: {result.out} ({len(b.files) + 1} files; on the device: python run.py check)")
    if b.mcu:
        print(f"flash {b.mcu['flash_bytes']} bytes, tensor arena {b.mcu['arena_bytes']} bytes (TFLM, measured); "
              f"register: {', '.join(b.mcu['resolver'])}")
    print(f"the device needs: {b.runtimes}")
    return 0


def _paths_or_model(args, what: str) -> list[str]:
    """PATH arguments, plus --model's export folder (exported first when needed)."""
    paths = list(args.paths)
    if args.model:
        paths.append(_exported(args.model, args.input_shape, args.timeout, args.input, args.init_args))
        args.input_shape = None  # they were the model's; its export's manifest now says them
    if not paths:
        raise BadInput(f"pass {what}, or --model NAME (exported first when needed)")
    return paths


def _int_list(text: str, flag: str) -> list[int]:
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise BadInput(f"{flag} {text!r}: pass whole numbers separated by commas, e.g. 1,2") from None


def _exported(model: str, input_shapes: list[str] | None, timeout: float, inputs: list[str] | None = None, init_args: str | None = None,
              mcu: bool = False) -> str:
    """The model's export folder (edgezoo-out/NAME), exported with int8 first unless a complete
    export of it, at these input shapes, is already there. ``mcu``: its TFLite file alone with
    static (full-integer) int8, in edgezoo-out/NAME-mcu."""
    from . import progress
    from .manifest import read_manifest
    from .pipeline import default_out, export, resolve_spec
    from .usermodel import parse_input_shape

    from .usermodel import parse_init_args, parse_input

    spec = resolve_spec(model, [parse_input_shape(s) for s in input_shapes or []] or None, [parse_input(s) for s in inputs or []],
                        parse_init_args(init_args))
    out = default_out(spec)
    if mcu:
        out = out.with_name(out.name + MCU_EXPORT_SUFFIX)
    manifest = out / "manifest.json"
    if manifest.is_file():
        try:
            m = read_manifest(manifest)
            if m.model == spec.name and [(i.name, i.shape, i.dtype) for i in m.inputs] == [(i.name, list(i.shape), i.dtype) for i in spec.inputs] \
                    and m.description == spec.description \
                    and any(a.precision == "int8" for a in m.artifacts) \
                    and (not mcu or any(a.format == "tflite" and a.int8_scheme == "static" for a in m.artifacts)):
                progress.info(f"benchmarking the export already in {out} (edgezoo export --out {out} makes it again)")
                return str(out)
        except BadInput:
            pass
    export(model, int8=True, out=out, input_shape=input_shapes, timeout=timeout, inputs=inputs, init_args=init_args,
           **({"formats": ["tflite"], "int8_scheme": "static"} if mcu else {}))
    return str(out)


def _cmd_report(args) -> int:
    from pathlib import Path

    from rich.console import Console

    from .bench_results import read_bench
    from .manifest import read_manifest
    from .report import bench_table, export_table

    folder = Path(args.folder)
    console = Console(width=max(200, Console().width))
    manifest_path, bench_path, verify_path = folder / "manifest.json", folder / "bench.json", folder / "verify.json"
    if not any(p.is_file() for p in (manifest_path, bench_path, verify_path)):
        raise BadInput(f"{str(folder)!r} holds no manifest.json, bench.json or verify.json: pass an export folder (edgezoo export --out), "
                       "a bench folder or a verify folder")
    if manifest_path.is_file():
        manifest = read_manifest(manifest_path)
        console.print(export_table(manifest))
    if bench_path.is_file():
        report = read_bench(bench_path)
        console.print(bench_table(report))
        if manifest_path.is_file():
            stale = {r.sha256 for r in report.rows if r.runtime != "torch" and r.sha256} - {a.sha256 for a in manifest.artifacts}
            if stale:
                from . import progress

                progress.warn(f"bench.json measured {len(stale)} file(s) this export no longer holds: run edgezoo bench {folder} again")
    else:
        print(f"no benchmarks yet: edgezoo bench {folder}")
    if verify_path.is_file():
        from .report import verify_table
        from .verify_results import read_verify

        console.print(verify_table(read_verify(verify_path)))
    else:
        print(f"not verified on arm64 yet: edgezoo verify {folder}")
    return 0


def _cmd_train(args) -> int:
    from . import zoo
    from .train import evaluate, trained_model

    spec = zoo.get(args.model)
    model, path = trained_model(spec, retrain=args.retrain)
    data = spec.load_data(spec.inputs[0].shape)
    metric = evaluate(model, data, "test")
    bar = spec.bar(data)
    said = "no bar" if bar is None else f"bar: {'at least' if data.measure.higher_is_better else 'at most'} {bar[0]:.4g}, {bar[1]}"
    print(f"{spec.name}: test {spec.metric_name} {metric:.4f} ({said}); checkpoint {path}")
    return 0 if bar is None or data.measure.clears(metric, bar[0]) else 1


def _cmd_prune(args) -> int:
    from . import zoo
    from .prune import check_prunable, pruned_model
    from .report import human_count

    spec = zoo.get(args.model)
    check_prunable(spec, args.ratio, args.finetune_epochs, None)
    r = pruned_model(spec, args.ratio, args.finetune_epochs)
    (m0, m1), (p0, p1), (a0, a1) = r.macs, r.params, r.metric
    print(f"{spec.name} pruned {r.ratio:.0%} of its channels ({len(r.architecture)} modules narrower): MACs {human_count(m0)} -> {human_count(m1)} "
          f"({m1 / m0 - 1:+.0%}), parameters {human_count(p0)} -> {human_count(p1)} ({p1 / p0 - 1:+.0%}); "
          f"test {spec.metric_name} {a0:.4f} -> {a1:.4f} after {r.finetune_epochs} fine-tuning epochs; weights {r.weights}")
    print(f"export it with: edgezoo export --model {spec.name} --prune {r.ratio:g}" + (f" --finetune-epochs {args.finetune_epochs}" if args.finetune_epochs is not None else ""))
    return 0


def _cmd_list(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from . import zoo
    from .stats import count_macs, count_params, human_count

    table = Table(title="edgezoo models")
    for col in ("name", "task", "dataset", "params", "MACs", "input"):
        table.add_column(col)
    for name in zoo.names():
        spec = zoo.get(name)
        model = spec.build().eval()
        inputs = ", ".join(f"{i.name} {'x'.join(map(str, i.shape))} {i.dtype}" for i in spec.inputs)
        table.add_row(name, spec.task, spec.dataset, human_count(count_params(model)), human_count(count_macs(model, spec.example_inputs())), inputs)
    Console(width=max(140, Console().width)).print(table)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .devices.estimate import profile_names
    from .export import FORMATS
    from .export.child import DEFAULT_STEP_TIMEOUT_S

    parser = argparse.ArgumentParser(prog="edgezoo", description="Train, export, int8-quantize and check models for the edge.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("export", help="export a zoo model (or PATH.py:Class) to every format and check each against torch")
    p.add_argument("--model", default="mobilenet", help="zoo name (see `edgezoo list`), or PATH.py:NAME: a class or a function returning an nn.Module")
    p.add_argument("--init-args", default=None, metavar="JSON",
                   help="a model of your own: keyword arguments for NAME, a JSON object of literals, e.g. '{\"d_model\": 64, \"nhead\": 4}'")
    p.add_argument("--input", action="append", default=None, metavar="NAME:SHAPE[:DTYPE[:LOW-HIGH]]",
                   help="a model of your own: one per forward argument, in order, e.g. input_ids:1x32:int64:0-65 or src:12x1x64 "
                        "(dtype float32 by default; LOW-HIGH the range random inputs are drawn from, high exclusive for integers: "
                        "[0, 1) for floats and {0, 1} for integers by default)")
    p.add_argument("--data", default=None, metavar="FILE.npz|DIR",
                   help="a model of your own: your samples, one array per --input name stacked on a first axis, optionally target and "
                        "split (train/val/test per sample): int8 calibrates on them, and with --metric every artifact is scored on them")
    p.add_argument("--metric", default=None, metavar="accuracy|top5|mse|rmse|mae",
                   help="with --data: the task metric of torch and of every artifact against the data's target; int8 is held to "
                        "--max-drop, by default 1 point of accuracy/top5, or 5%% of torch's rmse/mae (10.25%% of its mse)")
    p.add_argument("--int8", action="store_true", help="also make calibrated int8 artifacts")
    p.add_argument("--formats", default=None, help=f"comma-separated subset of {','.join(FORMATS)} (default: all)")
    p.add_argument("--out", default=None, help="output folder (default: edgezoo-out/MODEL)")
    p.add_argument("--weights", default=None, help="checkpoint to export instead of the zoo's trained one (.safetensors, or a torch state_dict)")
    p.add_argument("--input-shape", action="append", default=None, help="input shape, batch first, e.g. 1,3,64,64 (repeat for several inputs)")
    p.add_argument("--int8-scheme", default=None, metavar="static|weights",
                   help="int8 for every format: static (weights and activations, calibrated) or weights (int8 weights, float "
                        "activations). Implies --int8. Default: the model card's choice, static for your own module")
    p.add_argument("--max-drop", type=float, default=None, metavar="X",
                   help="accuracy-aware static int8: keep the fewest layers in float (ranked by how much of the metric each recovers, on "
                        "the validation split) so that int8 loses at most X of the task metric, in its own units. Implies --int8")
    p.add_argument("--qat", action="store_true",
                   help="quantization-aware fine-tuning: the trained model distilled into itself under simulated int8; its fake-quantized "
                        "graph is the ONNX and OpenVINO int8 files (cached). Implies --int8")
    p.add_argument("--epochs", type=int, default=None, help="with --qat: fine-tuning epochs (default: a tenth of the card's, at least 5)")
    p.add_argument("--calib", default=None, help="int8 calibration samples: FILE.npy (N stacked) or DIR of .npy files")
    p.add_argument("--calib-samples", type=int, default=128, help="calibration samples to use (default 128)")
    p.add_argument("--threads", type=int, default=2, help="threads for every runtime when checking and timing (default 2)")
    p.add_argument("--retrain", action="store_true", help="train again even if a checkpoint is cached")
    p.add_argument("--prune", type=float, default=None, metavar="RATIO",
                   help="remove this fraction of the channels first (structured, torch-pruning), fine-tune, then export the smaller model")
    p.add_argument("--finetune-epochs", type=int, default=None, help="fine-tuning epochs after --prune, spread over the card's training stages (default: the card's own)")
    p.add_argument("--timeout", type=float, default=DEFAULT_STEP_TIMEOUT_S, metavar="SECONDS",
                   help=f"limit for each conversion, quantization or first run of a file, in its child process (default {DEFAULT_STEP_TIMEOUT_S:.0f})")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("bench", help="measure every artifact in every runtime that can run it: latency percentiles, load time, memory, threads")
    p.add_argument("paths", nargs="*", metavar="PATH", help="export folders, or .onnx/.tflite/.xml files made anywhere")
    p.add_argument("--model", default=None, help="a zoo model (or PATH.py:NAME): its export folder, exported first when needed")
    p.add_argument("--input", action="append", default=None, metavar="NAME:SHAPE[:DTYPE[:LOW-HIGH]]", help="with --model PATH.py:NAME: its inputs, as for export")
    p.add_argument("--init-args", default=None, metavar="JSON", help="with --model PATH.py:NAME: its keyword arguments, as for export")
    p.add_argument("--threads", default=None, help="comma-separated thread counts, each measured (default: 1 and the cores, at most 4)")
    p.add_argument("--device", default="cpu", help="comma-separated: cpu, cuda (ONNX Runtime's CUDA provider), openvino:GPU (measured here); "
                   "ssh://[user@]host[:port] (the export's rpi bundle measured there with run.py, over your own ssh setup; several "
                   f"devices in parallel); adb[:SERIAL] (each .tflite timed by LiteRT's benchmark_model on an Android device); or a device profile ({', '.join(profile_names())}: estimated from devices/profiles/) (default cpu)")
    p.add_argument("--remote-runs", type=int, default=50, help="with ssh:// and adb devices: timed runs per file and thread count (default 50)")
    p.add_argument("--benchmark-binary", default=None, metavar="PATH",
                   help="with --device adb[:SERIAL]: LiteRT's benchmark_model for the device, pushed for the run (default: the device's "
                        "/data/local/tmp/benchmark_model)")
    p.add_argument("--remote-python", default="python3", help="with ssh:// devices: the Python there that has numpy and the runtime (default python3)")
    p.add_argument("--runtimes", default=None, help="comma-separated subset of torch,onnxruntime,openvino,litert,litert-ref (default: all that can run each file)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    p.add_argument("--seconds", type=float, default=2.0, help="seconds of timed calls per row, over all rounds (default 2)")
    p.add_argument("--input-shape", action="append", default=None, help="shape of a file's dynamic input, batch first (repeat per input, in order)")
    p.add_argument("--out", default=None, help="where bench.json, bench.md and the plots go (default: the export folder, else edgezoo-bench)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--timeout", type=float, default=DEFAULT_STEP_TIMEOUT_S, metavar="SECONDS", help="limit for each row's load and each burst of calls")
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser("verify", help="run every .onnx and .tflite file in the aarch64 builds of its runtime under QEMU, held to this host's outputs")
    p.add_argument("paths", nargs="*", metavar="PATH", help="export folders, or .onnx/.tflite files made anywhere")
    p.add_argument("--model", default=None, help="a zoo model (or PATH.py:NAME): its export folder, exported first when needed")
    p.add_argument("--input", action="append", default=None, metavar="NAME:SHAPE[:DTYPE[:LOW-HIGH]]", help="with --model PATH.py:NAME: its inputs, as for export")
    p.add_argument("--init-args", default=None, metavar="JSON", help="with --model PATH.py:NAME: its keyword arguments, as for export")
    p.add_argument("--arch", default="arm64", help="the architecture to emulate (arm64)")
    p.add_argument("--cpu", default="cortex-a72,cortex-a76", help="comma-separated cores: cortex-a53, cortex-a72 (Raspberry Pi 4), cortex-a76 (Pi 5, phones)")
    p.add_argument("--samples", type=int, default=3, help="seeded input sets per file (default 3)")
    p.add_argument("--input-shape", action="append", default=None, help="shape of a file's dynamic input, batch first (repeat per input, in order)")
    p.add_argument("--out", default=None, help="where verify.json and verify.md go (default: the export folder, else edgezoo-verify)")
    p.add_argument("--timeout", type=float, default=DEFAULT_STEP_TIMEOUT_S, metavar="SECONDS", help="limit for each file on each side")
    p.set_defaults(func=_cmd_verify)

    p = sub.add_parser("bundle", help="a folder that runs on the device with nothing but its runtime: files, run.py, samples and their expected outputs")
    p.add_argument("paths", nargs="*", metavar="EXPORT_DIR", help="an export folder")
    p.add_argument("--model", default=None, help="a zoo model (or PATH.py:NAME): its export folder, exported with int8 first when needed")
    p.add_argument("--input", action="append", default=None, metavar="NAME:SHAPE[:DTYPE[:LOW-HIGH]]", help="with --model PATH.py:NAME: its inputs, as for export")
    p.add_argument("--init-args", default=None, metavar="JSON", help="with --model PATH.py:NAME: its keyword arguments, as for export")
    p.add_argument("--input-shape", action="append", default=None, help="with --model: input shape, batch first, as for export")
    p.add_argument("--target", required=True, help="rpi (.tflite and .onnx, fp32 and int8), android (.tflite) or mcu (full-integer int8 "
                   ".tflite as a C array for TensorFlow Lite Micro, with its operators, flash and arena sizes; --model exports it)")
    p.add_argument("--out", default=None, help="the bundle's folder (default: the export folder's name with -TARGET, beside it)")
    p.add_argument("--samples", type=int, default=3, help="seeded sample inputs, with each file's expected outputs (default 3)")
    p.add_argument("--timeout", type=float, default=DEFAULT_STEP_TIMEOUT_S, metavar="SECONDS", help="limit for each file's run on this host")
    p.set_defaults(func=_cmd_bundle)

    p = sub.add_parser("report", help="show an export folder's manifest, its benchmarks and its arm64 verification")
    p.add_argument("folder", metavar="DIR")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("train", help="train a zoo model and cache its checkpoint")
    p.add_argument("--model", required=True)
    p.add_argument("--retrain", action="store_true", help="train again even if a checkpoint is cached")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("prune", help="remove whole channels of a zoo model (torch-pruning), fine-tune it and cache it")
    p.add_argument("--model", required=True)
    p.add_argument("--ratio", type=float, required=True, help="fraction of the channels to remove, in (0, 1)")
    p.add_argument("--finetune-epochs", type=int, default=None, help="fine-tuning epochs, spread over the card's training stages (default: the card's own)")
    p.set_defaults(func=_cmd_prune)

    p = sub.add_parser("list", help="list the zoo's models")
    p.set_defaults(func=_cmd_list)
    return parser


def _exit_on_sigterm(signum, frame):
    # SIGTERM's default ends the process where it stands; as an exception, cleanup runs (the
    # staging folder goes, the output folder's lock is released) and no manifest is left half-true.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    import signal

    args = build_parser().parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        return args.func(args)
    except EdgezooError as exc:
        print(f"edgezoo: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edgezoo: interrupted", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)  # main() called from Python leaves the caller's handler as it was


if __name__ == "__main__":
    sys.exit(main())
