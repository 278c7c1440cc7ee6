"""Fuzzing the loaders of untrusted files with atheris (libFuzzer, coverage-guided).

    .venv/bin/python tests/fuzzing.py TARGET [--seconds N | --runs N] [--work DIR]    TARGET: one of TARGETS, or all

Each target writes the fuzzer's bytes to a file the way a user would hand it over and calls the
loader. Allowed outcomes: a value, or edgezoo's one-line refusal (BadInput, no newline). Any other
exception, a crash or a hang is a finding. The seed corpus holds a valid file of each kind and a
pickle whose payload would create a marker file: if that file ever appears, a payload ran. Inputs
that were findings once (tests/fixtures/fuzz_findings/TARGET/) join the seeds, so every run replays
them first; a new finding is written to the run's folder (--work, else a new temporary one), never
the working directory.
tests/test_fuzz.py runs each target briefly in the suite; this script runs it as long as asked.
"""

from __future__ import annotations

import argparse
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["edgezoo"]):
    from edgezoo.errors import BadInput
    from edgezoo.manifest import read_manifest
    from edgezoo.quantize.calibration import from_user_files
    from edgezoo.registry import InputSpec
    from edgezoo.weights import read_state_dict

FINDINGS = Path(__file__).parent / "fixtures" / "fuzz_findings"
WORK = MARKER = Path()  # main() sets them: the run's folder (--work) and the file a payload would create
CALIB_INPUT = (InputSpec("x", (1, 3, 4, 4)),)


class _Payload:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


def _refused_in_one_line(call) -> None:
    try:
        call()
    except BadInput as exc:
        if "\n" in str(exc):
            raise AssertionError(f"refusal over several lines: {exc!r}") from None
    if MARKER.exists():
        raise AssertionError("a pickled payload was executed")


def _as_file(data: bytes, name: str) -> Path:
    path = WORK / name
    path.write_bytes(data)
    return path


def weights_pt(data: bytes) -> None:
    _refused_in_one_line(lambda: read_state_dict(_as_file(data, "w.pt")))


def weights_safetensors(data: bytes) -> None:
    _refused_in_one_line(lambda: read_state_dict(_as_file(data, "w.safetensors")))


def calib_npy(data: bytes) -> None:
    _refused_in_one_line(lambda: from_user_files(_as_file(data, "calib.npy"), CALIB_INPUT))


def calib_folder(data: bytes) -> None:
    """The bytes split into up to four .npy files of one folder."""
    fdp = atheris.FuzzedDataProvider(data)
    folder = WORK / "calib"
    folder.mkdir(exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    for i in range(fdp.ConsumeIntInRange(1, 4)):
        (folder / f"s{i}.npy").write_bytes(fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 400)))
    _refused_in_one_line(lambda: from_user_files(folder, CALIB_INPUT))


def manifest(data: bytes) -> None:
    _refused_in_one_line(lambda: read_manifest(_as_file(data, "manifest.json")))


TARGETS = {f.__name__: f for f in (weights_pt, weights_safetensors, calib_npy, calib_folder, manifest)}


def seed_corpus(target: str, folder: Path) -> None:
    """Valid files of the target's kind, and a pickle carrying code, for the fuzzer to mutate."""
    import io

    import numpy as np
    import torch
    from safetensors.torch import save

    folder.mkdir(parents=True, exist_ok=True)
    state = {"conv.weight": torch.randn(2, 3, 3, 3), "conv.bias": torch.zeros(2)}
    seeds: list[bytes] = []
    if target == "weights_pt":
        buffer = io.BytesIO()
        torch.save(state, buffer)
        seeds += [buffer.getvalue(), pickle.dumps({"w": _Payload()}, protocol=2)]
        buffer = io.BytesIO()
        torch.save({"w": _Payload()}, buffer)
        seeds.append(buffer.getvalue())
    elif target == "weights_safetensors":
        seeds.append(save(state))
    elif target in ("calib_npy", "calib_folder"):
        for array in (np.zeros((2, 3, 4, 4), np.float32), np.ones((3, 4, 4), np.float16), np.arange(48, dtype=np.int64)):
            buffer = io.BytesIO()
            np.save(buffer, array)
            seeds.append(buffer.getvalue())
    elif target == "manifest":
        from edgezoo.manifest import Artifact, Host, InputEntry, Manifest, Reference

        m = Manifest("m", "", "", "", "w", None, [InputEntry("x", [1, 3], "float32")], Reference("torch", None, None, 1, "s"), None, None, None, None,
                     2, Host("x86_64", "Linux", "cpu", 2), {"torch": "2.13.0"}, 1.0, [Artifact("onnx", "fp32", "ok", "onnxruntime", "done", "m.onnx", 3, "ab")])
        seeds += [m.to_json().encode(), b"[]", b"{}"]
    seeds += [p.read_bytes() for p in sorted((FINDINGS / target).glob("*"))]
    for i, seed in enumerate(seeds):
        (folder / f"seed{i}").write_bytes(seed)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", choices=[*TARGETS, "all"])
    parser.add_argument("--seconds", type=int, default=None, help="stop after this long (per target)")
    parser.add_argument("--runs", type=int, default=None, help="stop after this many inputs (per target)")
    parser.add_argument("--work", type=Path, default=None, help="folder for the corpus and any finding (default: a new temporary folder)")
    args = parser.parse_args()
    if args.target == "all":  # one process per target: libFuzzer runs one target per process
        limits = [f"--seconds={args.seconds}"] if args.seconds else []
        limits += [f"--runs={args.runs}"] if args.runs else []
        work = lambda name: ["--work", str(args.work / name)] if args.work else []  # noqa: E731
        return max(subprocess.run([sys.executable, __file__, name, *limits, *work(name)]).returncode for name in TARGETS)
    global WORK, MARKER
    WORK = args.work.resolve() if args.work else Path(tempfile.mkdtemp(prefix="edgezoo-fuzz-"))
    WORK.mkdir(parents=True, exist_ok=True)
    MARKER = WORK / "payload-ran"
    print(f"corpus and findings: {WORK}", file=sys.stderr)
    corpus = WORK / "corpus"
    seed_corpus(args.target, corpus)
    flags = [sys.argv[0], "-rss_limit_mb=4096", "-timeout=60", f"-artifact_prefix={WORK}/", str(corpus)]
    flags += [f"-max_total_time={args.seconds}"] if args.seconds else []
    flags += [f"-runs={args.runs}"] if args.runs else []
    atheris.Setup(flags, TARGETS[args.target])
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
