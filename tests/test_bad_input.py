"""Each bad input: one line naming the input and the fix, a non-zero exit, no traceback, nothing written."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

from edgezoo.manifest import read_manifest


def _assert_one_line_error(result, *needles: str) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [l for l in result.stderr.splitlines() if l.strip() and not l.startswith("warning:")]
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("edgezoo: error: ")
    for needle in needles:
        assert needle in line, (needle, line)
    return line


def _nothing_written(out):
    assert not out.exists(), list(out.iterdir())


def test_unknown_model_suggests_closest(cli, tmp_path):
    out = tmp_path / "out"
    _assert_one_line_error(cli("export", "--model", "mobilnet", "--out", out), "'mobilnet'", "did you mean mobilenet")
    assert not out.exists()


def test_unknown_format_suggests_closest(cli, tmp_path):
    _assert_one_line_error(cli("export", "--formats", "onnx,tflit", "--out", tmp_path / "out"), "'tflit'", "did you mean tflite")


def test_model_file_missing(cli, tmp_path):
    out = tmp_path / "out"
    _assert_one_line_error(cli("export", "--model", "nope/net.py:Net", "--input-shape", "1,3,8,8", "--out", out), "'nope/net.py'", "does not exist")
    assert not out.exists()


def test_model_class_missing(cli, user_models, tmp_path):
    out = tmp_path / "out"
    line = _assert_one_line_error(cli("export", "--model", f"{user_models}:Missing", "--input-shape", "1,3,8,8", "--out", out), "does not define 'Missing'")
    assert "TinyNet" in line  # names what the file does define
    assert not out.exists()


def test_forward_raises_quotes_the_exception(cli, user_models, tmp_path):
    out = tmp_path / "out"
    _assert_one_line_error(cli("export", "--model", f"{user_models}:BadForward", "--input-shape", "1,7", "--out", out), "ValueError", "expected 5 features, got 7")
    _nothing_written(out)


def test_constructor_needs_arguments(cli, user_models, tmp_path):
    out = tmp_path / "out"
    _assert_one_line_error(cli("export", "--model", f"{user_models}:NeedsArgs", "--input-shape", "1,7", "--out", out),
                           "NeedsArgs(width)", "no --init-args", "'width'")
    _nothing_written(out)


@pytest.mark.parametrize("shape", ["1,3,a,8", "1,3,-8,8", "", "1;3"])
def test_input_shape_malformed(cli, user_models, tmp_path, shape):
    out = tmp_path / "out"
    _assert_one_line_error(cli("export", "--model", f"{user_models}:TinyNet", "--input-shape", shape, "--out", out), "--input-shape", "e.g. 1,3,64,64")
    assert not out.exists()


def test_weights_missing(cli, user_models, tmp_path):
    out = tmp_path / "out"
    _assert_one_line_error(cli("export", "--model", f"{user_models}:TinyNet", "--input-shape", "1,3,16,16", "--weights", tmp_path / "none.pt", "--out", out), "none.pt", "does not exist")
    _nothing_written(out)


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_weights_corrupt(cli, user_models, tmp_path, suffix):
    bad = tmp_path / f"bad{suffix}"
    bad.write_bytes(b"\x00not a checkpoint at all" * 10)
    out = tmp_path / "out"
    _assert_one_line_error(cli("export", "--model", f"{user_models}:TinyNet", "--input-shape", "1,3,16,16", "--weights", bad, "--out", out), f"bad{suffix}", "re-save")
    _nothing_written(out)


def test_weights_of_another_architecture_name_the_first_mismatch(cli, user_models, tmp_path):
    weights = tmp_path / "other.pt"
    torch.save({"conv.weight": torch.zeros(4, 3, 3, 3), "conv.bias": torch.zeros(4)}, weights)
    out = tmp_path / "out"
    _assert_one_line_error(cli("export", "--model", f"{user_models}:TinyNet", "--input-shape", "1,3,16,16", "--weights", weights, "--out", out), "'conv.weight'", "[4, 3, 3, 3]", "[8, 3, 3, 3]")
    _nothing_written(out)


def test_zoo_model_with_foreign_weights(cli, tmp_path):
    weights = tmp_path / "foreign.pt"
    torch.save({"fc.weight": torch.zeros(2, 2)}, weights)
    out = tmp_path / "out"
    _assert_one_line_error(cli("export", "--model", "mobilenet", "--weights", weights, "--out", out), "'features.0.0.weight'", "missing")
    _nothing_written(out)


class _Payload:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_weights_with_pickled_code_are_refused_unexecuted(cli, user_models, tmp_path):
    marker = tmp_path / "code-ran"
    payload = _Payload()
    payload.marker = marker
    evil = tmp_path / "evil.pt"
    torch.save({"conv.weight": payload}, evil)
    with open(tmp_path / "evil.pkl", "wb") as f:
        pickle.dump({"x": payload}, f)
    out = tmp_path / "out"
    for path in (evil, tmp_path / "evil.pkl"):
        _assert_one_line_error(cli("export", "--model", f"{user_models}:TinyNet", "--input-shape", "1,3,16,16", "--weights", path, "--out", out), path.name, "pickled code", "refused")
    assert not marker.exists()
    _nothing_written(out)


def test_output_path_is_a_file(cli, tmp_path):
    target = tmp_path / "taken"
    target.write_text("mine")
    _assert_one_line_error(cli("export", "--out", target), "'" + str(target) + "'", "is a file")
    assert target.read_text() == "mine"


def test_output_path_not_writable(cli, tmp_path):
    # /proc refuses new folders even to root, where chmod would not.
    _assert_one_line_error(cli("export", "--out", "/proc/edgezoo-out"), "/proc/edgezoo-out", "not writable")


def _nan_state(model) -> dict:
    return {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in model.state_dict().items()}


def test_nan_weights_are_refused_before_anything_is_written(cli, user_models, tmp_path):
    """NaN compares false, so NaN outputs once passed every bound: three fp32 rows "ok", exit 0."""
    from edgezoo import zoo

    weights = tmp_path / "nan.pt"
    torch.save(_nan_state(zoo.get("cnn").build()), weights)
    out = tmp_path / "out"
    _assert_one_line_error(cli("export", "--model", "cnn", "--weights", weights, "--out", out), "nan.pt", "NaN or inf", "check the checkpoint")
    _nothing_written(out)


def test_nan_weights_of_a_users_model_are_refused(cli, user_models, tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("um", user_models)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    weights = tmp_path / "nan.pt"
    torch.save(_nan_state(module.TinyNet()), weights)
    out = tmp_path / "out"
    _assert_one_line_error(cli("export", "--model", f"{user_models}:TinyNet", "--input-shape", "1,3,16,16", "--weights", weights, "--out", out), "NaN or inf")
    _nothing_written(out)


def test_calibration_sample_with_nan_is_refused_naming_file_and_sample(cli, user_models, tmp_path):
    import numpy as np

    samples = np.random.default_rng(0).random((4, 3, 16, 16), dtype=np.float32)
    samples[2, 0, 1, 1] = np.inf
    np.save(tmp_path / "calib.npy", samples)
    out = tmp_path / "out"
    _assert_one_line_error(cli("export", "--model", f"{user_models}:TinyNet", "--input-shape", "1,3,16,16", "--int8", "--calib", tmp_path / "calib.npy", "--out", out),
                           "calib.npy", "sample 2", "NaN or inf")
    _nothing_written(out)


def _npy_with_header(path, shape, dtype="<f4", data=b""):
    from numpy.lib import format as npy_format

    with open(path, "wb") as f:
        npy_format.write_array_header_1_0(f, {"descr": dtype, "fortran_order": False, "shape": shape})
        f.write(data)


@pytest.mark.parametrize("case,needle", [
    ("huge_header", "truncated or padded"),
    ("strings", "not numbers"),
    ("empty", "is empty"),
    ("garbage", "not a plain numeric .npy"),
])
def test_calibration_file_that_lies_or_holds_no_numbers(cli, user_models, tmp_path, case, needle):
    import numpy as np

    bad = tmp_path / "calib.npy"
    if case == "huge_header":   # declares 4 TB, holds 16 bytes: refused before any allocation
        _npy_with_header(bad, (1_000_000, 3, 16, 16, 20_000), data=b"\0" * 16)
    elif case == "strings":
        np.save(bad, np.array(["a", "b"]))
    elif case == "empty":
        np.save(bad, np.zeros((0, 3, 16, 16), np.float32))
    else:
        bad.write_bytes(b"\x93NUMPY\x01\x00garbage")
    out = tmp_path / "out"
    _assert_one_line_error(cli("export", "--model", f"{user_models}:TinyNet", "--input-shape", "1,3,16,16", "--int8", "--calib", bad, "--out", out), "calib.npy", needle)
    _nothing_written(out)


def test_calibration_folder_skips_fifos_sockets_and_broken_links(cli, user_models, tmp_path):
    import socket

    import numpy as np

    folder = tmp_path / "calib"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        np.save(folder / f"s{i}.npy", rng.random((3, 16, 16), dtype=np.float32))
    os.mkfifo(folder / "pipe.npy")   # opening it would block forever
    (folder / "gone.npy").symlink_to(tmp_path / "nowhere.npy")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(folder / "sock.npy"))
    try:
        out = tmp_path / "out"
        result = cli("export", "--model", f"{user_models}:TinyNet", "--input-shape", "1,3,16,16", "--int8", "--formats", "onnx", "--calib", folder, "--out", out)
    finally:
        sock.close()
    assert result.returncode == 0, result.stderr
    assert "skipped what is not a regular file: gone.npy (broken link), pipe.npy (FIFO), sock.npy (socket)" in result.stderr

    assert read_manifest(out / "manifest.json").calibration == "user file calib, 3 samples"


@pytest.mark.parametrize("flag,value,needle", [
    ("--threads", "0", "pass a number from 1 to"), ("--threads", "-2", "pass a number from 1 to"), ("--threads", "100000", "CPU cores"),
    ("--calib-samples", "0", "positive number"), ("--calib-samples", "-5", "positive number"),
])
def test_threads_and_calibration_counts_out_of_range(cli, user_models, tmp_path, flag, value, needle):
    out = tmp_path / "out"
    _assert_one_line_error(cli("export", "--model", f"{user_models}:TinyNet", "--input-shape", "1,3,16,16", flag, value, "--out", out), f"{flag} {value}", needle)
    _nothing_written(out)


@pytest.mark.parametrize("kind", ["meta", "sparse"])
def test_weights_without_dense_values_are_refused(cli, user_models, tmp_path, kind):
    import importlib.util

    spec = importlib.util.spec_from_file_location("um", user_models)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    state = module.TinyNet().state_dict()
    state["conv.weight"] = torch.empty(state["conv.weight"].shape, device="meta") if kind == "meta" else state["conv.weight"].to_sparse()
    weights = tmp_path / f"{kind}.pt"
    torch.save(state, weights)
    out = tmp_path / "out"
    _assert_one_line_error(cli("export", "--model", f"{user_models}:TinyNet", "--input-shape", "1,3,16,16", "--weights", weights, "--out", out),
                           "'conv.weight'", kind, "not dense values")
    _nothing_written(out)


def test_zip_checkpoint_that_would_inflate_is_refused_unread(cli, user_models, tmp_path):
    import zipfile

    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("archive/data.pkl", b"\0" * (64 << 20))  # 64 MiB of zeros: a few KB on disk
    assert bomb.stat().st_size < 1 << 20
    out = tmp_path / "out"
    _assert_one_line_error(cli("export", "--model", f"{user_models}:TinyNet", "--input-shape", "1,3,16,16", "--weights", bomb, "--out", out),
                           "bomb.pt", "declares 67,108,864 bytes", "refused unread")
    _nothing_written(out)


def test_input_shape_a_zoo_model_cannot_take_is_refused_before_training(cli, tmp_path):
    import time

    out = tmp_path / "out"
    started = time.perf_counter()
    result = cli("export", "--model", "mobilenet", "--input-shape", "1,1,224,224", "--out", out)
    _assert_one_line_error(result, "forward raised", "1x1x224x224")
    assert time.perf_counter() - started < 120  # a forward pass, not minutes of training
    _nothing_written(out)
    assert not list((tmp_path / "edgezoo-home" / "checkpoints").glob("*")) if (tmp_path / "edgezoo-home").exists() else True


def test_input_batch_over_the_memory_bound_is_refused(cli, tmp_path):
    out = tmp_path / "out"
    _assert_one_line_error(cli("export", "--model", "mlp", "--input-shape", "100000000,13", "--out", out), "100000000x13", "GiB", "smaller batch")
    _nothing_written(out)


def test_markup_in_paths_and_messages_prints_literally(cli, user_models, tmp_path):
    odd = tmp_path / "[bold]models[/x]"   # "[/x]" makes the folder "x]" inside "[bold]models["
    odd.mkdir(parents=True)
    model_file = odd / "net.py"
    model_file.write_text(user_models.read_text())
    missing = odd / "[red]w.pt"
    result = cli("export", "--model", f"{model_file}:TinyNet", "--input-shape", "1,3,16,16", "--weights", missing, "--out", tmp_path / "out")
    _assert_one_line_error(result, "[bold]models[/x]", "[red]w.pt")
    # and through rich: a warning that quotes a --calib folder whose name holds markup
    import numpy as np

    calib = odd / "[bold]calib"
    calib.mkdir()
    for i in range(8):
        np.save(calib / f"{i}.npy", np.random.default_rng(i).random((3, 16, 16), dtype=np.float32))
    os.mkfifo(calib / "[bold].npy")
    result = cli("export", "--model", f"{model_file}:TinyNet", "--input-shape", "1,3,16,16", "--int8", "--formats", "onnx", "--calib", calib, "--out", odd / "out")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert f"--calib '{calib}': skipped what is not a regular file: [bold].npy (FIFO)" in result.stderr


def test_max_drop_negative_is_refused(cli, tmp_path):
    out = tmp_path / "out"
    _assert_one_line_error(cli("export", "--model", "mlp", "--max-drop", "-1", "--out", out), "--max-drop -1", ">= 0")
    _nothing_written(out)


def test_max_drop_with_weight_only_int8_is_refused(cli, tmp_path):
    out = tmp_path / "out"
    _assert_one_line_error(cli("export", "--model", "mlp", "--max-drop", "1", "--int8-scheme", "weights", "--out", out), "--max-drop", "--int8-scheme weights")
    _nothing_written(out)


def test_max_drop_without_task_data_is_refused(cli, user_models, tmp_path):
    out = tmp_path / "out"
    _assert_one_line_error(cli("export", "--model", f"{user_models}:TinyNet", "--input-shape", "1,3,16,16", "--max-drop", "0.5", "--out", out),
                           "--max-drop", "no task data")
    _nothing_written(out)


# A model of your own, as general as the zoo's: each bad argument, data file or forward is one line.

@pytest.fixture
def seed_models(tmp_path):
    from pathlib import Path

    path = tmp_path / "seed_models.py"
    path.write_text((Path(__file__).parent / "fixtures" / "seed_models.py").read_text())
    return path


ENCODER_ARGS = '{"d_model": 16, "nhead": 2, "num_layers": 1}'


@pytest.mark.parametrize("init_args, needles", [
    ("{d_model: 16}", ["--init-args", "is not JSON", "give an object"]),
    ("[16, 2, 1]", ["--init-args", "JSON list, not an object"]),
    ('{"d_model": 16, "nhead": 2}', ["TransformerEncoder(d_model, nhead, num_layers, num_classes=4)", "missing a required argument: 'num_layers'"]),
    ('{"d_model": 16, "nhead": 2, "num_layers": 1, "depth": 3}', ["unexpected keyword argument 'depth'"]),
    ('{"d_model": 16, "nhead": 3, "num_layers": 1}', ["TransformerEncoder(d_model=16, nhead=3, num_layers=1) raised AssertionError", "check --init-args"]),
])
def test_constructor_arguments_that_do_not_fit(cli, seed_models, tmp_path, init_args, needles):
    out = tmp_path / "out"
    _assert_one_line_error(cli("export", "--model", f"{seed_models}:TransformerEncoder", "--init-args", init_args, "--input", "x:1x8x16", "--out", out), *needles)
    _nothing_written(out)


@pytest.mark.parametrize("spec, needles", [
    ("x", ["--input 'x' does not parse", "NAME:SHAPE[:DTYPE[:LOW-HIGH]]"]),
    ("x:1x8x16:float32:0-1:extra", ["does not parse"]),
    ("x:1xAx16", ["the shape '1xAx16'", "positive integers joined by x"]),
    ("x:1x8x16:float", ["dtype 'float' is not one of", "float32"]),
    ("x:1x8x16:float32:1-0", ["range '1-0' is empty"]),
    ("x:1x8x16:int64:0-2.5", ["must be whole numbers"]),
    ("x:1x8x16:uint8:0-300", ["does not fit uint8"]),
    ("2x:1x8x16", ["the name '2x' must start with a letter"]),
])
def test_input_declarations_that_do_not_parse(cli, seed_models, tmp_path, spec, needles):
    out = tmp_path / "out"
    _assert_one_line_error(cli("export", "--model", f"{seed_models}:TransformerEncoder", "--init-args", ENCODER_ARGS, "--input", spec, "--out", out), *needles)
    _nothing_written(out)


def test_inputs_that_do_not_fit_forward(cli, seed_models, tmp_path):
    out = tmp_path / "out"
    line = _assert_one_line_error(cli("export", "--model", f"{seed_models}:Transformer", "--input", "src:12x1x64", "--out", out),
                                  "forward(src, tgt) takes 2 tensor(s), 1 given by --input (src)", "in forward's order")
    _nothing_written(out)
    _assert_one_line_error(cli("export", "--model", f"{seed_models}:Transformer", "--input", "src:12x1x64", "--input", "src:8x1x64", "--out", out),
                           "--input names src more than once")
    _assert_one_line_error(cli("export", "--model", f"{seed_models}:Transformer", "--input", "src:12x1x64", "--input-shape", "8,1,64", "--out", out),
                           "either as --input", "not both")
    _assert_one_line_error(cli("export", "--model", "mlp", "--input", "x:1x64", "--out", out), "--input declares a model of your own's inputs", "--input-shape")
    _assert_one_line_error(cli("export", "--model", "mlp", "--init-args", "{}", "--out", out), "--init-args builds a model of your own")
    _nothing_written(out)
    assert "Traceback" not in line


@pytest.mark.parametrize("model, needles", [
    ("TakesDict", ["forward's argument 'batch' is annotated dict, not a tensor", "wrap the model in an nn.Module"]),
    ("TakesGraph", ["forward raised on example inputs", "AttributeError", "forward seems to want something other than tensors", "wrap"]),
])
def test_forward_that_takes_what_no_file_carries(cli, seed_models, tmp_path, model, needles):
    out = tmp_path / "out"
    _assert_one_line_error(cli("export", "--model", f"{seed_models}:{model}", "--input", "x:1x4", "--out", out), *needles)
    _nothing_written(out)


@pytest.mark.parametrize("case, needles", [
    ("missing", ["has no array named 'input'", "holds image"]),
    ("extra", ["holds 'labels', which is no --input"]),
    ("shape", ["array 'input' has shape [10, 3, 8, 8]", "[N, 3, 16, 16]"]),
    ("dtype", ["array 'input' holds int64 values; --input input is float32"]),
    ("nan", ["array 'input' holds NaN or inf"]),
    ("count", ["'target' holds 9 samples, the inputs 10"]),
    ("float-target", ["'target' holds float32 values; --metric accuracy needs integer class indices"]),
    ("split", ["'split' holds 'holdout'", "train, val or test"]),
    ("no-target", ["has no 'target' array", "--metric accuracy"]),
    ("misfit", ["--metric accuracy does not fit the model's outputs", "first output [1, 10] against target [1, 2]"]),
    ("pickle", ["cannot be read without unpickling"]),
])
def test_data_files_that_do_not_match_the_inputs(cli, user_models, tmp_path, case, needles):
    rng = np.random.default_rng(0)
    good = {"input": rng.random((10, 3, 16, 16), dtype=np.float32), "target": rng.integers(0, 10, 10)}
    arrays = {
        "missing": {"image": good["input"], "target": good["target"]},
        "extra": {**good, "labels": good["target"]},
        "shape": {**good, "input": rng.random((10, 3, 8, 8), dtype=np.float32)},
        "dtype": {**good, "input": rng.integers(0, 255, (10, 3, 16, 16))},
        "nan": {**good, "input": np.full((10, 3, 16, 16), np.nan, np.float32)},
        "count": {**good, "target": good["target"][:9]},
        "float-target": {**good, "target": good["target"].astype(np.float32)},
        "split": {**good, "split": np.array(["train"] * 5 + ["holdout"] * 5)},
        "no-target": {"input": good["input"]},
        "misfit": {**good, "target": rng.integers(0, 10, (10, 2))},
        "pickle": {**good, "split": np.array([{"x": 1}] * 10, dtype=object)},
    }[case]
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    out = tmp_path / "out"
    _assert_one_line_error(cli("export", "--model", f"{user_models}:TinyNet", "--input", "input:1x3x16x16", "--data", path, "--metric", "accuracy",
                               "--int8", "--out", out), f"--data {str(path)!r}" if case != "misfit" else "--metric", *needles)
    _nothing_written(out)


def test_metric_and_data_flags_that_do_not_go_together(cli, user_models, tmp_path):
    out = tmp_path / "out"
    _assert_one_line_error(cli("export", "--model", f"{user_models}:TinyNet", "--input", "input:1x3x16x16", "--metric", "accuracy", "--out", out),
                           "--metric accuracy", "add --data")
    np.savez(tmp_path / "d.npz", input=np.zeros((4, 3, 16, 16), np.float32), target=np.zeros(4, np.int64))
    _assert_one_line_error(cli("export", "--model", f"{user_models}:TinyNet", "--input", "input:1x3x16x16", "--data", tmp_path / "d.npz",
                               "--metric", "f1", "--out", out), "--metric 'f1'", "accuracy, top5, mse, rmse, mae")
    _assert_one_line_error(cli("export", "--model", "mlp", "--data", tmp_path / "d.npz", "--out", out), "--data is for a model of your own")
    _assert_one_line_error(cli("export", "--model", f"{user_models}:TinyNet", "--input", "input:1x3x16x16", "--data", tmp_path / "d.npz",
                               "--calib", tmp_path / "d.npz", "--out", out), "drop --calib")
    _assert_one_line_error(cli("export", "--model", f"{user_models}:TinyNet", "--input", "input:1x3x16x16", "--data", tmp_path / "missing.npz",
                               "--out", out), "does not exist")
    _nothing_written(out)
