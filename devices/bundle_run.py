"""run.py of an edgezoo device bundle: needs only numpy and the device's runtime (ai-edge-litert or
tflite-runtime for .tflite, onnxruntime for .onnx), and portable.py beside it.

    python run.py check [--file F] [--threads N]    # the samples again; compared with the expected outputs
    python run.py bench N [--file F] [--threads N]  # N timed runs per file; JSON on stdout
    python run.py classify IMAGE [--file F]         # a picture through the model (needs Pillow)

Exit status: 0 when everything asked for ran and matched; 1 when a file does not match, or fails
to load or run; 2 when nothing could run (no runtime for any file here) or the input is unusable.
This file imports nothing from edgezoo: it is the copy that travels with the model.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import portable  # noqa: E402  (the bundle's own copy, beside this file)

MODULES = {"onnxruntime": ("onnxruntime",), "litert": ("ai_edge_litert", "tflite_runtime")}
INSTALL = {"onnxruntime": "pip install onnxruntime", "litert": "pip install ai-edge-litert (or tflite-runtime)"}


class Refused(Exception):
    """One line for the user, exit 2."""


def load_bundle() -> dict:
    try:
        with open(os.path.join(HERE, "bundle.json")) as f:
            return json.load(f)
    except (OSError, ValueError) as exc:
        raise Refused(f"bundle.json beside run.py cannot be read ({exc}): copy the whole bundle folder") from None


def has_runtime(runtime: str) -> bool:
    return any(importlib.util.find_spec(m) is not None for m in MODULES.get(runtime, ()))


def chosen(bundle: dict, file: str | None) -> list[dict]:
    artifacts = bundle["artifacts"]
    if file is None:
        return artifacts
    picked = [a for a in artifacts if a["file"] == file]
    if not picked:
        raise Refused(f"--file {file!r} is not in this bundle: it holds {', '.join(a['file'] for a in artifacts)}")
    return picked


def sample_inputs(bundle: dict) -> list[list[np.ndarray]]:
    with np.load(os.path.join(HERE, bundle["samples_file"])) as stored:
        n_inputs = len(bundle["inputs"])
        return [[stored[f"s{s}_i{i}"] for i in range(n_inputs)] for s in range(bundle["samples"])]


def cmd_check(args) -> int:
    bundle = load_bundle()
    samples = sample_inputs(bundle)
    ran = bad = 0
    for art in chosen(bundle, args.file):
        if not has_runtime(art["runtime"]):
            print(f"skipped   {art['file']}: no {art['runtime']} in this Python ({INSTALL[art['runtime']]})")
            continue
        ran += 1
        try:
            model = portable.Model(os.path.join(HERE, art["file"]), art["runtime"], args.threads)
            with np.load(os.path.join(HERE, art["expected"])) as stored:
                worst = {"ok": True, "max_units": 0.0, "max_rel": 0.0}
                for s, feed in enumerate(samples):
                    expected = [stored[f"s{s}_o{o}"] for o in range(len(art["output_units"]))]
                    result = portable.compare(expected, model.run(feed), art["output_units"])
                    if not result["ok"] and "why" in result:
                        worst = result
                        break
                    worst = {"ok": worst["ok"] and result["ok"], "max_units": max(worst["max_units"], result["max_units"]),
                             "max_rel": max(worst["max_rel"], result["max_rel"])}
        except Exception as exc:  # the runtime's refusal is this file's result
            worst = {"ok": False, "why": f"{type(exc).__name__}: {exc}".splitlines()[0]}
        said = worst.get("why") or f"max {worst['max_units']:.2f} quantization steps, {worst['max_rel']:.1e} relative over {len(samples)} samples"
        print(f"{'ok' if worst['ok'] else 'MISMATCH':9s} {art['file']}: {said}")
        bad += not worst["ok"]
    if not ran:
        print(f"nothing ran: no runtime for this bundle's files here ({'; '.join(sorted(set(INSTALL[a['runtime']] for a in bundle['artifacts'])))})",
              file=sys.stderr)
        return 2
    print(f"{ran - bad} of {ran} files match the outputs recorded when the bundle was made"
          f" (bound: {portable.UNIT_BOUND:g} quantization step, {portable.REL_BOUND:g} relative) on {platform.machine()}")
    return 1 if bad else 0


def cmd_bench(args) -> int:
    bundle = load_bundle()
    if args.runs < 1:
        raise Refused(f"bench {args.runs}: pass a number of timed runs of at least 1")
    picked = [a for a in chosen(bundle, args.file) if has_runtime(a["runtime"])]
    if not picked:
        raise Refused(f"no runtime for this bundle's files here: {'; '.join(sorted(set(INSTALL[a['runtime']] for a in chosen(bundle, args.file))))}")
    missing = [{"file": a["file"], "format": a["format"], "precision": a["precision"], "runtime": a["runtime"], "threads": args.threads,
                "status": "unavailable", "error": f"no {a['runtime']} in this Python ({INSTALL[a['runtime']]})"}
               for a in chosen(bundle, args.file) if not has_runtime(a["runtime"])]
    rows = []
    spawn = not args.alone
    for art in picked:
        row = None
        if spawn:
            # One process per file: its peak memory is its own, and one runtime's threads do not skew the next.
            cmd = [sys.executable, os.path.abspath(__file__), "bench", str(args.runs), "--file", art["file"], "--threads", str(args.threads),
                   "--warmup", str(args.warmup), "--alone"]
            try:
                done = subprocess.run(cmd, capture_output=True, text=True)
            except OSError:  # this Python cannot start itself (an emulated one without binfmt): measure here
                spawn = False
            else:
                try:
                    row = json.loads(done.stdout)["results"][0]
                except (ValueError, KeyError, IndexError):
                    row = {"file": art["file"], "format": art["format"], "precision": art["precision"], "runtime": art["runtime"],
                           "threads": args.threads, "status": "failed", "error": (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]}
        if row is None:
            row = bench_one(art, sample_inputs(bundle)[0], args)
            row["process"] = "shared" if len(picked) > 1 else "own"
        rows.append(row)
    rows += missing
    print(json.dumps({"device": device(), "versions": portable.runtime_versions(), "results": rows}, indent=1))
    return 1 if any(r["status"] == "failed" for r in rows) else 0


def bench_one(art: dict, feed: list, args) -> dict:
    row = {"file": art["file"], "format": art["format"], "precision": art["precision"], "runtime": art["runtime"], "threads": args.threads}
    try:
        started = time.perf_counter()
        model = portable.Model(os.path.join(HERE, art["file"]), art["runtime"], args.threads)
        row["load_ms"] = round((time.perf_counter() - started) * 1e3, 3)
        for _ in range(args.warmup):
            model.run(feed)
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            model.run(feed)
            times.append((time.perf_counter() - started) * 1e3)
        p50, p90, p99 = (float(np.percentile(times, q)) for q in (50, 90, 99))
        row.update(status="ok", runs=args.runs, warmup=args.warmup, p50_ms=round(p50, 4), p90_ms=round(p90, 4), p99_ms=round(p99, 4),
                   mean_ms=round(float(np.mean(times)), 4), throughput_per_s=round(1e3 / p50, 2) if p50 > 0 else None,
                   peak_rss_mb=peak_rss_mb())
    except Exception as exc:
        row.update(status="failed", error=f"{type(exc).__name__}: {exc}".splitlines()[0])
    return row


def peak_rss_mb() -> float | None:
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)  # bytes on macOS, KiB on Linux


def device() -> dict:
    cpu = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Hardware", "Model") and value.strip():
                    cpu = value.strip()
    except OSError:
        pass
    return {"machine": platform.machine(), "system": platform.system(), "release": platform.release(), "cpu": cpu or platform.processor() or None,
            "cores": os.cpu_count(), "hostname": platform.node()}


def cmd_classify(args) -> int:
    bundle = load_bundle()
    pre = bundle["inputs"][0].get("image")
    if not pre:
        raise Refused("this model does not take pictures (its bundle records no image preprocessing): use check or bench")
    try:
        from PIL import Image
    except ImportError:
        raise Refused("classify needs Pillow to read the picture: pip install pillow") from None
    runnable = [a for a in chosen(bundle, args.file) if has_runtime(a["runtime"])]
    if not runnable:
        raise Refused(f"no runtime for this bundle's files here: {'; '.join(sorted(set(INSTALL[a['runtime']] for a in bundle['artifacts'])))}")
    art = runnable[0]
    try:
        picture = Image.open(args.image)
        picture.load()
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise Refused(f"{args.image!r} is not a picture Pillow can read ({exc}): pass a PNG or JPEG") from None
    x = preprocess(picture, bundle["inputs"][0], args.invert)
    model = portable.Model(os.path.join(HERE, art["file"]), art["runtime"], args.threads)
    feed = [x] + sample_inputs(bundle)[0][1:]
    logits = np.asarray(model.run(feed)[0], np.float64).reshape(-1)
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    labels = bundle.get("labels") or [str(i) for i in range(len(logits))]
    top = np.argsort(-probs)[: args.top]
    print(json.dumps({"file": art["file"], "image": args.image,
                      "top": [{"label": labels[i] if i < len(labels) else str(i), "index": int(i), "probability": round(float(probs[i]), 4)} for i in top]}, indent=1))
    return 0


def preprocess(picture, entry: dict, invert: str) -> np.ndarray:
    """The picture as the model's first input, by the bundle's preprocessing data."""
    from PIL import Image

    pre = entry["image"]
    shape = entry["shape"]
    if pre["layout"] == "NCHW":
        channels, height, width = shape[1], shape[2], shape[3]
    else:
        height, width, channels = shape[1], shape[2], shape[3]
    picture = picture.convert("L" if pre["color"] == "grayscale" else "RGB")
    if pre.get("source_size"):  # the training images' own size first, as the data was made
        picture = picture.resize((pre["source_size"][1], pre["source_size"][0]), Image.BOX)
    picture = picture.resize((width, height), Image.BILINEAR)
    x = np.asarray(picture, np.float32)
    if pre.get("foreground") == "bright on dark" and (invert == "yes" or (invert == "auto" and float(np.median(x)) > 127.5)):
        x = 255.0 - x  # dark ink on light paper, as a photo of a page is
    x = x * np.float32(pre["scale"])
    if x.ndim == 2:
        x = np.repeat(x[:, :, None], channels, axis=2)
    x = (x - np.asarray(pre["mean"], np.float32)) / np.asarray(pre["std"], np.float32)
    if pre["layout"] == "NCHW":
        x = x.transpose(2, 0, 1)
    return np.ascontiguousarray(x[None].astype(entry["dtype"]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Runs this edgezoo bundle's model files on this device.")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="re-run the samples and compare with the outputs recorded when the bundle was made")
    bench = sub.add_parser("bench", help="time N runs of each file (JSON on stdout)")
    bench.add_argument("runs", type=int)
    bench.add_argument("--warmup", type=int, default=5)
    bench.add_argument("--alone", action="store_true", help=argparse.SUPPRESS)
    classify = sub.add_parser("classify", help="a picture through the model: its top classes")
    classify.add_argument("image")
    classify.add_argument("--top", type=int, default=5)
    classify.add_argument("--invert", choices=("auto", "yes", "no"), default="auto",
                          help="for models trained on bright-on-dark images: invert the picture (auto: when it is mostly light)")
    for p in (check, bench, classify):
        p.add_argument("--file", default=None, help="one of the bundle's files (default: every file, or the first runnable for classify)")
        p.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        if args.threads < 1:
            raise Refused(f"--threads {args.threads}: pass at least 1")
        return {"check": cmd_check, "bench": cmd_bench, "classify": cmd_classify}[args.command](args)
    except Refused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
