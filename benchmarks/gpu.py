"""The README's GPU section: ONNX Runtime's CUDA execution provider, measured on a real GPU.

    python benchmarks/gpu.py EXPORT_DIR          # on a host with a CUDA GPU and onnxruntime-gpu
    python benchmarks/gpu.py --render            # only re-render the README from results/gpu.json

For each ONNX file an export left (its manifest says which), on the GPU host, in one run:
- where ORT placed each node: a profiled session on ["CUDAExecutionProvider", "CPUExecutionProvider"]
  counts the kernels each provider ran (a node CUDA lacks falls back to the CPU silently);
- the task metric over the export's held-out test split with the file on CUDA, beside the metric the
  manifest recorded on the CPU at export, and the outputs' largest difference from the same file
  on ONNX Runtime's CPU provider on the same host;
- latency at the exported batch, numpy in and out (the copies to and from the GPU included, as a
  caller of session.run pays them), CUDA against the CPU provider on all of that host's cores,
  interleaved rounds, median of each.
Then `edgezoo bench FILE.onnx ... --device cpu,cuda --runtimes onnxruntime` itself, so the command
users run is the one proven. Writes results/gpu.json (with bench.json inside) and the README block.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"
BEGIN, END = "<!-- gpu:begin (benchmarks/gpu.py writes this) -->", "<!-- gpu:end -->"
CUDA, CPU = "CUDAExecutionProvider", "CPUExecutionProvider"


def placement(path: Path, feed: dict, work: Path) -> dict[str, int]:
    """Kernels run per provider in one profiled call (after a warm-up call). The file's runner has
    already shown that CUDA starts: ONNX Runtime does not fall back to the CPU here unnoticed."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.enable_profiling = True
    opts.profile_file_prefix = str(work / path.stem)
    sess = ort.InferenceSession(str(path), opts, providers=[CUDA, CPU])
    sess.run(None, feed)
    sess.run(None, feed)
    trace = json.loads(Path(sess.end_profiling()).read_text())
    counts: dict[str, int] = {}
    seen = set()
    for event in trace:
        args = event.get("args", {})
        if event.get("cat") == "Node" and "provider" in args and event["name"].endswith("_kernel_time"):
            node = event["name"][: -len("_kernel_time")]
            if node not in seen:
                seen.add(node)
                counts[args["provider"]] = counts.get(args["provider"], 0) + 1
    return counts


def outputs(runner, feeds) -> np.ndarray:
    return np.concatenate([runner(inputs)[0][:n] for inputs, n in feeds])


def host() -> dict:
    try:
        gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True).stdout.strip()
    except OSError:
        gpu = "unknown GPU (no nvidia-smi)"
    import onnxruntime as ort

    return {"gpu": gpu, "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "python": platform.python_version(), "onnxruntime": ort.__version__, "numpy": np.__version__}


def measure(export_dir: Path) -> dict:
    import onnxruntime as ort

    from edgezoo import zoo
    from edgezoo.check import fixed_batch
    from edgezoo.devices.runners import measure_interleaved, onnxruntime_runner
    from edgezoo.manifest import read_manifest

    if CUDA not in ort.get_available_providers():
        sys.exit(f"ONNX Runtime {ort.__version__} here has no {CUDA}: run this on a CUDA GPU host with onnxruntime-gpu")
    manifest = read_manifest(export_dir / "manifest.json")
    spec = zoo.get(manifest.model)
    shape = tuple(manifest.inputs[0].shape)
    data = spec.load_data(shape)
    if not data.scored_by_outputs or len(manifest.inputs) != 1:
        sys.exit(f"{manifest.model}: this script scores single-input models whose metric comes from their outputs")
    batch = shape[0]
    feeds, targets = [], []
    for inputs, target in data.batches("test", batch):
        feeds.append(([t.numpy() for t in fixed_batch(inputs, batch)], len(target)))
        targets.append(target.numpy())
    targets = np.concatenate(targets)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for art in manifest.artifacts:
            if art.format != "onnx" or not art.ok:
                continue
            path = export_dir / art.path
            # The runner fails, rather than falling back to the CPU, when CUDA does not start.
            on_gpu, on_cpu = onnxruntime_runner(path, os.cpu_count(), [CUDA, CPU]), onnxruntime_runner(path, os.cpu_count())
            gpu_out, cpu_out = outputs(on_gpu, feeds), outputs(on_cpu, feeds)
            one = feeds[0][0]
            ms = measure_interleaved({"cuda": on_gpu, "cpu": on_cpu}, one, rounds=5, warmup=10)
            rows.append({
                "file": art.path, "precision": art.precision, "int8_scheme": art.int8_scheme,
                "kernels": placement(path, dict(zip([d[0] for d in on_gpu.inputs], one)), Path(tmp)),
                "metric_cuda": float(data.metric(gpu_out, targets)), "metric_cpu_here": float(data.metric(cpu_out, targets)),
                "metric_manifest": art.metric,
                "rel_diff_cuda_vs_cpu": float(np.abs(gpu_out - cpu_out).max() / np.abs(cpu_out).max()),
                "agreement_cuda_vs_cpu": float((gpu_out.argmax(-1) == cpu_out.argmax(-1)).mean()) if data.measure.class_scores else None,
                "p50_ms_cuda": ms["cuda"]["latency_ms"], "p50_ms_cpu": ms["cpu"]["latency_ms"],
            })
            print(json.dumps(rows[-1]), flush=True)
    return {"model": manifest.model, "input": list(shape), "metric_name": manifest.reference.metric_name,
            "test_samples": int(len(targets)), "host": host(), "rows": rows}


def run_bench(files: list[Path], out: Path) -> dict:
    """The ONNX files alone (copied away from their manifest, whose other formats this host may
    lack), as a user benches files made anywhere."""
    import shutil

    alone = out / "files"
    alone.mkdir(parents=True)
    paths = [shutil.copy(f, alone / f.name) for f in files]
    proc = subprocess.run([sys.executable, "-m", "edgezoo.cli", "bench", *map(str, paths), "--device", "cpu,cuda",
                           "--runtimes", "onnxruntime", "--no-plots", "--out", str(out)], capture_output=True, text=True)
    print(proc.stdout[-4000:], proc.stderr[-4000:], flush=True)
    if proc.returncode != 0:
        sys.exit(f"edgezoo bench --device cuda failed ({proc.returncode})")
    return json.loads((out / "bench.json").read_text())


def render(result: dict) -> str:
    h = result["host"]
    lines = [f"Measured on {h['gpu'].split(',')[0]} ({h['cores']} CPU cores), ONNX Runtime {h['onnxruntime']} (onnxruntime-gpu), "
             f"{result['model']} at {'x'.join(map(str, result['input']))}, {result['test_samples']} held-out test samples; "
             "latency is numpy in and out, copies to and from the GPU included. By `benchmarks/gpu.py`.", "",
             f"| file | kernels on CUDA / CPU | {result['metric_name']} on CUDA | at export (CPU) | max rel. diff vs CPU provider | p50 CUDA | p50 CPU provider (same host) |",
             "|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        k = r["kernels"]
        lines.append(f"| `{r['file']}` | {k.get(CUDA, 0)} / {k.get(CPU, 0)} | {r['metric_cuda']:.4f} | {r['metric_manifest']:.4f} | "
                     f"{r['rel_diff_cuda_vs_cpu']:.1e} | {r['p50_ms_cuda']:.2f} ms | {r['p50_ms_cpu']:.2f} ms |")
    bench = result.get("bench")
    if bench:
        said = [f"{r['label']} {r['threads']} thread{'s' if r['threads'] > 1 else ''} {r['latency']['p50_ms']:.2f} ms"
                for r in bench["rows"] if r["device"] == "cuda" and r["status"] == "ok"]
        lines += ["", f"`edgezoo bench --device cpu,cuda --runtimes onnxruntime` on the same export there, its CUDA rows: {'; '.join(said)}."]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("export_dir", nargs="?", type=Path)
    parser.add_argument("--render", action="store_true")
    parser.add_argument("--results", type=Path, default=RESULTS / "gpu.json")
    args = parser.parse_args()
    if not args.render:
        if args.export_dir is None:
            parser.error("give an export folder, or --render")
        result = measure(args.export_dir)
        with tempfile.TemporaryDirectory() as tmp:
            result["bench"] = run_bench([args.export_dir / r["file"] for r in result["rows"]], Path(tmp))
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(json.dumps(result, indent=1))
    result = json.loads(args.results.read_text())
    if BEGIN in README.read_text():
        from edgezoo.fileio import write_text_atomic
        from edgezoo.report import replace_block

        write_text_atomic(README, replace_block(README.read_text(), BEGIN, END, render(result)))
    print(render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
