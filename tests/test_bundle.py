"""`edgezoo bundle`: a folder that runs on the device with numpy and one runtime, and reproduces the
outputs recorded when it was made (fp32 within 1e-4 relative, int8 within one quantization step),
in a clean venv on this host and in the aarch64 builds under QEMU."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import venv
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from edgezoo.devices.bundle import read_bundle

needs_qemu = pytest.mark.skipif(not (shutil.which("qemu-aarch64-static") or shutil.which("qemu-aarch64")),
                                reason="qemu-user-static is not installed (.ci/run installs it with apt-get where it can)")


@pytest.fixture(scope="module")
def cnn_bundles(zoo_export, tmp_path_factory):
    """The small cnn's export, bundled for rpi and android."""
    from edgezoo.cli import main

    spec, result = zoo_export("cnn")
    root = tmp_path_factory.mktemp("bundles")
    for target in ("rpi", "android"):
        assert main(["bundle", str(result.out_dir), "--target", target, "--out", str(root / target)]) == 0
    return result, root


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_bundle_holds_the_targets_files_hashes_preprocessing_and_labels(cnn_bundles):
    result, root = cnn_bundles
    ok = {(a.format, a.precision): a for a in result.manifest.artifacts if a.ok}
    for target, formats in (("rpi", {"onnx", "tflite"}), ("android", {"tflite"})):
        bundle = read_bundle(root / target)
        assert {(a.format, a.precision) for a in bundle.artifacts} == {k for k in ok if k[0] in formats}
        for a in bundle.artifacts:
            assert a.sha256 == ok[a.format, a.precision].sha256 == _sha256(root / target / a.file)
        listed = {f["path"]: f["sha256"] for f in bundle.files}
        on_disk = {str(p.relative_to(root / target)) for p in (root / target).rglob("*") if p.is_file()} - {"bundle.json"}
        assert set(listed) == on_disk and all(_sha256(root / target / p) == h for p, h in listed.items())
        assert {"run.py", "portable.py", "manifest.json", "samples.npz", "labels.txt"} <= on_disk
        assert (root / target / "labels.txt").read_text().split() == [str(d) for d in range(10)]
        image = bundle.inputs[0].image
        assert image is not None and image.layout == "NCHW" and image.scale == pytest.approx(1 / 255) and image.source_size == [8, 8]
        tflite_int8 = next(a for a in bundle.artifacts if (a.format, a.precision) == ("tflite", "int8"))
        # A full-integer file: what an app must feed and read, as data.
        assert tflite_int8.quantization["inputs"][0]["dtype"] == "int8" and tflite_int8.quantization["inputs"][0]["scale"] > 0
        assert tflite_int8.output_units[0] == pytest.approx(tflite_int8.quantization["outputs"][0]["scale"])


def test_check_in_a_clean_venv_with_numpy_and_litert_only(cnn_bundles, tmp_path):
    """No edgezoo, torch or onnxruntime there: the .tflite files are checked, the .onnx ones
    skipped with the pip line that would run them; a changed expected output fails loudly."""
    result, root = cnn_bundles
    env_dir = tmp_path / "device-venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    pins = [f"numpy=={metadata.version('numpy')}", f"ai-edge-litert=={metadata.version('ai-edge-litert')}"]
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *pins], check=True, capture_output=True, timeout=600)
    present = subprocess.run([str(python), "-c", "import importlib.util as u; print([m for m in ('torch', 'onnxruntime', 'edgezoo') if u.find_spec(m)])"],
                             capture_output=True, text=True, check=True, cwd=tmp_path).stdout.strip()
    assert present == "[]"

    bundle = tmp_path / "rpi"
    shutil.copytree(root / "rpi", bundle)
    run = subprocess.run([str(python), "run.py", "check"], cwd=bundle, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert sum(line.startswith("ok") and ".tflite" in line for line in lines) == 2
    assert sum(line.startswith("skipped") and ".onnx" in line and "pip install onnxruntime" in line for line in lines) == 2

    expected = bundle / "expected" / "cnn_int8.tflite.npz"
    art = next(a for a in read_bundle(bundle).artifacts if a.file == "cnn_int8.tflite")
    with np.load(expected) as stored:
        moved = {k: stored[k] for k in stored.files}
    moved["s1_o0"] = moved["s1_o0"] + np.float32(2 * art.output_units[0])  # two quantization steps
    np.savez(expected, **moved)
    run = subprocess.run([str(python), "run.py", "check"], cwd=bundle, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1 and "MISMATCH  cnn_int8.tflite" in run.stdout, run.stdout + run.stderr


@needs_qemu
def test_rpi_bundle_check_passes_on_emulated_arm64(cnn_bundles):
    from edgezoo.devices.arm64 import guest

    result, root = cnn_bundles
    g = guest()
    run = subprocess.run(g.command("cortex-a72", str(root / "rpi" / "run.py"), "check"), env=g.env(), capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "4 of 4 files match" in run.stdout and "on aarch64" in run.stdout, run.stdout


def test_bench_and_classify_on_this_host(cnn_bundles, tmp_path):
    from PIL import Image
    from sklearn.datasets import load_digits

    from edgezoo.data.base import split_indices

    result, root = cnn_bundles
    bench = subprocess.run([sys.executable, "run.py", "bench", "5", "--file", "cnn_int8.tflite"], cwd=root / "android", capture_output=True, text=True, timeout=300)
    assert bench.returncode == 0, bench.stderr
    said = json.loads(bench.stdout)
    [row] = said["results"]
    assert row["status"] == "ok" and row["runs"] == 5 and 0 < row["p50_ms"] <= row["p90_ms"] <= row["p99_ms"] and row["peak_rss_mb"] > 0
    assert said["device"]["machine"] and said["versions"]["numpy"]

    # Held-out digits as a user would photograph them: dark ink on light paper, 64x64.
    digits = load_digits()
    test = split_indices(len(digits.target), 1234)["test"][:5]
    right = 0
    for i in test:
        page = 255 - np.kron(digits.images[i] * 255 / 16, np.ones((8, 8))).round().astype(np.uint8)
        picture = tmp_path / f"digit{i}.png"
        Image.fromarray(page).save(picture)
        run = subprocess.run([sys.executable, "run.py", "classify", str(picture), "--file", "cnn.tflite"], cwd=root / "android",
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        top = json.loads(run.stdout)["top"]
        assert len(top) == 5 and sum(t["probability"] for t in top) <= 1.0001
        right += top[0]["label"] == str(digits.target[i])
    assert right == len(test)


def test_bad_input_is_one_line_and_leaves_nothing(cli, zoo_export, tmp_path):
    spec, result = zoo_export("cnn")
    run = cli("bundle", result.out_dir, "--target", "rpii")
    assert run.returncode == 2 and "rpi" in run.stderr and "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1

    run = cli("bundle", tmp_path, "--target", "rpi")
    assert run.returncode == 2 and "no manifest.json" in run.stderr

    users = tmp_path / "mine"
    users.mkdir()
    (users / "notes.txt").write_text("mine")
    run = cli("bundle", result.out_dir, "--target", "android", "--out", users)
    assert run.returncode == 2 and "not an edgezoo bundle" in run.stderr
    assert [p.name for p in users.iterdir()] == ["notes.txt"]

    stale = tmp_path / ".ok.staging-killedrun"  # what a run killed mid-way leaves: removed by the next run into that folder
    (stale / "expected").mkdir(parents=True)
    run = cli("bundle", result.out_dir, "--target", "android", "--out", tmp_path / "ok")
    assert run.returncode == 0 and not stale.exists() and (tmp_path / "ok" / "bundle.json").is_file()
    assert not list(tmp_path.glob(".ok.*"))  # nor a lock left behind

    changed = tmp_path / "changed"
    shutil.copytree(result.out_dir, changed)
    with open(changed / "cnn.tflite", "ab") as f:
        f.write(b"\0")
    run = cli("bundle", changed, "--target", "android", "--out", tmp_path / "b")
    assert run.returncode == 2 and "changed since its export" in run.stderr and not (tmp_path / "b").exists()
    assert not [p for p in tmp_path.iterdir() if "staging" in p.name]


def _mcu_bundle(cli, export_dir: Path, out: Path):
    run = cli("bundle", export_dir, "--target", "mcu", "--out", out)
    assert run.returncode == 0, run.stdout + run.stderr
    return read_bundle(out)


def _static_tflite(zoo_export, tmp_path_factory, name: str) -> Path:
    """``name``'s small variant as a full-integer (static int8) TFLite export."""
    from edgezoo import zoo
    from edgezoo.pipeline import export

    spec = zoo.get(name).small_variant()
    if spec.int8_scheme_for("tflite") == "static":
        return zoo_export(name)[1].out_dir
    out = tmp_path_factory.mktemp(f"{name}-static") / "out"
    export(spec, int8=True, formats=["tflite"], int8_scheme="static", out=out, calib_samples=64)
    return out


@pytest.mark.parametrize("name", ["cnn", "mlp", "dqn"])
def test_mcu_bundle_runs_in_tflm_in_the_stated_arena_and_its_c_array_compiles(name, cli, zoo_export, tmp_path, tmp_path_factory):
    """TensorFlow Lite Micro's own interpreter runs the file in exactly the stated arena (and not in
    512 bytes less: the size is measured, not guessed), with the outputs the bundle records (which
    matched LiteRT's int8 file within a step when it was made); the C array compiles and holds the
    file's bytes, 16-byte aligned."""
    from tflite_micro.python.tflite_micro import runtime

    bundle_dir = tmp_path / "mcu"
    bundle = _mcu_bundle(cli, _static_tflite(zoo_export, tmp_path_factory, name), bundle_dir)
    mcu = bundle.mcu
    [art] = bundle.artifacts
    assert (art.format, art.precision) == ("tflite", "int8")
    model = (bundle_dir / art.file).read_bytes()
    assert mcu["flash_bytes"] == len(model) and mcu["arena_bytes"] % 1024 == 0 and mcu["arena_bytes"] >= mcu["arena_min_bytes"]
    assert mcu["tflm_vs_litert_max_units"] <= 1 and len(mcu["resolver"]) == len(mcu["ops"]) and "AddFullyConnected" in mcu["resolver"]

    with np.load(bundle_dir / "samples.npz") as s, np.load(bundle_dir / mcu["expected_int8"]) as expected:
        interp = runtime.Interpreter.from_bytes(model, arena_size=mcu["arena_bytes"])
        for k in range(bundle.samples):
            d = mcu["inputs"][0]
            x = np.clip(np.round(s[f"s{k}_i0"] / d["scale"]) + d["zero_point"], -128, 127).astype(d["dtype"])
            interp.set_input(x.reshape(d["shape"]), 0)
            interp.invoke()
            np.testing.assert_array_equal(interp.get_output(0), expected[f"s{k}_o0"])
    with pytest.raises(RuntimeError):
        tight = runtime.Interpreter.from_bytes(model, arena_size=mcu["arena_min_bytes"] - 512)
        d = mcu["inputs"][0]
        tight.set_input(np.zeros(d["shape"], d["dtype"]), 0)
        tight.invoke()

    main = tmp_path / "main.c"
    main.write_text('#include <stdio.h>\n#include <stdint.h>\n#include "model_data.h"\n'
                    'int main(void) { printf("%zu %d %d %u\\n", g_model_data_len, (int)((uintptr_t)g_model_data % 16), EDGEZOO_TENSOR_ARENA_SIZE, '
                    '(unsigned)g_model_data[g_model_data_len - 1]); return 0; }\n')
    cxx, cc = shutil.which("g++") or shutil.which("c++"), shutil.which("gcc") or shutil.which("cc")
    if not (cxx and cc):
        pytest.skip("no C/C++ compiler on this host")
    subprocess.run([cxx, "-std=c++11", "-Wall", "-Werror", "-c", str(bundle_dir / "model_data.cc"), "-o", str(tmp_path / "model_data.o")], check=True)
    subprocess.run([cc, "-Wall", "-Werror", "-I", str(bundle_dir), "-c", str(main), "-o", str(tmp_path / "main.o")], check=True)
    subprocess.run([cxx, str(tmp_path / "main.o"), str(tmp_path / "model_data.o"), "-o", str(tmp_path / "probe")], check=True)
    said = subprocess.run([str(tmp_path / "probe")], capture_output=True, text=True, check=True).stdout.split()
    assert said == [str(len(model)), "0", str(mcu["arena_bytes"]), str(model[-1])]


@pytest.mark.trains("dqn")
def test_mcu_refuses_a_file_with_float_activations(cli, zoo_export, tmp_path):
    """The DQN's shipped int8 files keep activations float (its card's "weights" scheme): one line
    naming the export that makes a full-integer file, nothing written."""
    spec, result = zoo_export("dqn")
    run = cli("bundle", result.out_dir, "--target", "mcu", "--out", tmp_path / "m")
    assert run.returncode == 2 and "--int8-scheme static" in run.stderr and len(run.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "m").exists() and not [p for p in tmp_path.iterdir() if "staging" in p.name]


def test_mcu_refuses_an_operator_tflm_has_no_kernel_for(tmp_path):
    """TensorFlow Lite Micro's own interpreter decides: a file using an operator it has no kernel
    for (top-k, which litert-torch lowers to a sort) is refused in one line naming the operator."""
    import litert_torch
    import torch

    from edgezoo.devices.mcu import measure
    from edgezoo.errors import BadInput

    class TopK(torch.nn.Module):
        def forward(self, x):
            return torch.topk(x, 3).values

    path = tmp_path / "topk.tflite"
    litert_torch.convert(TopK().eval(), (torch.randn(1, 8),)).export(str(path))
    with pytest.raises(BadInput, match=r"topk.tflite cannot run on a microcontroller: uses [A-Z0-9_]*SORT[A-Z0-9_]*, which TensorFlow Lite Micro has no kernel for"):
        measure(path, [[np.zeros((1, 8), np.float32)]])
