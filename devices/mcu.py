"""`edgezoo bundle --target mcu`: the full-integer int8 .tflite for TensorFlow Lite Micro.

Writes the model as an aligned C array (``model_data.h`` / ``model_data.cc``), the operators to
register with TFLM's ``MicroMutableOpResolver`` (``op_resolver.h``, its ``Add*`` calls), the flash
size (the model's bytes) and a tensor arena size, and ``mcu.json`` with the same as data plus the
sample inputs' expected int8 outputs for an on-device check.

Everything stated is measured with the real TFLM interpreter (the ``tflite-micro`` package), in a
child process: the smallest arena in which the model allocates and runs is found by bisection and
rounded up to a KiB, the model is run again in exactly that arena, and its outputs on the samples
must match the LiteRT int8 file's within one quantization step. A model using an operator TFLM
lacks is refused naming the operator; a file whose activations are float (int8 weights only) is
refused with the export that makes a full-integer one.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from ..errors import BadInput, one_line

ARENA_ALIGN = 1024
ARENA_CEILING = 64 * 1024 * 1024


def op_names(model_bytes: bytes) -> list[str]:
    """The builtin operators the .tflite file uses, in its operator-code order."""
    from tflite_micro.python.tflite_micro import runtime
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

    names = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
    model = runtime.convert_bytearray_to_object(bytearray(model_bytes))
    return [names.get(runtime.get_builtin_code_from_operator_code(c), f"BUILTIN_{runtime.get_builtin_code_from_operator_code(c)}")
            for c in model.operatorCodes]


# MicroMutableOpResolver's method for a builtin where it is not the CamelCase of the name.
_RESOLVER_EXCEPTIONS = {"BATCH_MATMUL": "AddBatchMatMul", "L2_NORMALIZATION": "AddL2Normalization", "LOG_SOFTMAX": "AddLogSoftmax",
                        "UNIDIRECTIONAL_SEQUENCE_LSTM": "AddUnidirectionalSequenceLSTM", "PRELU": "AddPrelu", "RELU_N1_TO_1": "AddReluN1To1",
                        "RELU_0_TO_1": "AddRelu0To1", "SQUARED_DIFFERENCE": "AddSquaredDifference", "EMBEDDING_LOOKUP": "AddEmbeddingLookup"}


def resolver_call(op: str) -> str:
    """``CONV_2D`` -> ``AddConv2D``; ``FULLY_CONNECTED`` -> ``AddFullyConnected``."""
    if op in _RESOLVER_EXCEPTIONS:
        return _RESOLVER_EXCEPTIONS[op]
    return "Add" + "".join(part if part[:1].isdigit() else part.capitalize() for part in op.split("_"))


def measure(model_path: Path, samples: list[list[np.ndarray]], timeout: float = 300.0) -> dict:
    """In a child process: the operators, the smallest arena that runs the model, and its int8
    outputs on ``samples`` (float inputs, quantized as the file's input tensors take them) in an
    arena of the stated size."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="edgezoo-tflm-") as tmp:
        feeds = Path(tmp) / "feeds.npz"
        np.savez(feeds, **{f"s{s}_i{i}": x for s, feed in enumerate(samples) for i, x in enumerate(feed)})
        out = Path(tmp) / "result.json"
        # -I and a folder of its own: run from a clone's root, "-c" would import the source tree's edgezoo/
        # (which lacks the mapped devices/ package) instead of the installed one.
        cmd = [sys.executable, "-I", "-c", "import sys; from edgezoo.devices.mcu import _child; _child(*sys.argv[1:])",
               str(model_path.resolve()), str(feeds), str(len(samples)), str(out)]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, cwd=tmp)
        except subprocess.TimeoutExpired:
            raise BadInput(f"{model_path.name}: TensorFlow Lite Micro did not finish in {timeout:g} s: pass a larger --timeout") from None
        if not out.is_file():
            from ..errors import how_it_ended

            tail = (done.stderr.strip().splitlines() or [""])[-1]
            raise BadInput(f"{model_path.name}: TensorFlow Lite Micro's interpreter {how_it_ended(done.returncode)} ({one_line(tail)})")
        result = json.loads(out.read_text())
        if "error" in result:
            raise BadInput(result["error"])
        with np.load(Path(tmp) / "outputs.npz") as stored:
            result["outputs"] = {k: stored[k] for k in stored.files}
        return result


def _child(model_path: str, feeds_path: str, n_samples: str, out_path: str) -> None:
    """The measurement, in its own process (a TFLM abort kills this process, not edgezoo)."""
    from tflite_micro.python.tflite_micro import runtime

    data = Path(model_path).read_bytes()
    name = Path(model_path).name
    ops = op_names(data)
    result: dict = {"ops": ops}

    def attempt(arena: int):
        interp = runtime.Interpreter.from_bytes(data, arena_size=arena)
        return interp

    try:
        interp = _printing_to(Path(out_path).with_name("tflm.log"), lambda: attempt(ARENA_CEILING))
    except RuntimeError as exc:
        # TFLM names the operator on its own stderr, not in the exception ("failed to allocate tensors").
        said = Path(out_path).with_name("tflm.log").read_text(errors="replace")
        missing = re.search(r"[Dd]idn't find op for builtin opcode '([A-Z0-9_]+)'", said)
        why = f"uses {missing.group(1)}, which TensorFlow Lite Micro has no kernel for" if missing else one_line(f"{exc}: {said.strip()[-200:]}")
        Path(out_path).write_text(json.dumps({"error": f"{name} cannot run on a microcontroller: {why}"}))
        return
    detail = interp.get_input_details(0)
    if np.dtype(detail["dtype"]).kind == "f":
        Path(out_path).write_text(json.dumps({"error": f"{name} takes float inputs (int8 weights with float activations): a microcontroller "
                                                       "needs full-integer int8: export with --int8-scheme static --formats tflite"}))
        return
    n_inputs = len([k for k in np.load(feeds_path).files if k.startswith("s0_i")])
    with np.load(feeds_path) as stored:
        feeds = [[stored[f"s{s}_i{i}"] for i in range(n_inputs)] for s in range(int(n_samples))]

    def run(arena: int) -> list[list[np.ndarray]] | None:
        try:
            interp = attempt(arena)
            outs = []
            for feed in feeds:
                for i, x in enumerate(feed):
                    d = interp.get_input_details(i)
                    q = d["quantization_parameters"]
                    scale, zero = float(q["scales"][0]), int(q["zero_points"][0])
                    info = np.iinfo(d["dtype"])
                    interp.set_input(np.clip(np.round(x / scale) + zero, info.min, info.max).astype(d["dtype"]).reshape(d["shape"]), i)
                interp.invoke()
                outs.append([np.array(interp.get_output(o)) for o in range(_output_count(interp))])
            return outs
        except RuntimeError:
            return None

    if run(ARENA_CEILING) is None:
        Path(out_path).write_text(json.dumps({"error": f"{name} does not run in TensorFlow Lite Micro even with a {ARENA_CEILING >> 20} MiB arena"}))
        return
    low, high = 0, ARENA_CEILING  # runs at high, not at low
    while high - low > 256:
        mid = (low + high) // 2
        if run(mid) is None:
            low = mid
        else:
            high = mid
    arena = -(-high // ARENA_ALIGN) * ARENA_ALIGN
    outs = run(arena)
    if outs is None:
        Path(out_path).write_text(json.dumps({"error": f"{name}: the arena found ({arena} bytes) does not run the model again"}))
        return
    np.savez(Path(out_path).with_name("outputs.npz"), **{f"s{s}_o{o}": y for s, ys in enumerate(outs) for o, y in enumerate(ys)})
    outputs = []
    for o in range(_output_count(interp)):
        d = interp.get_output_details(o)
        q = d["quantization_parameters"]
        outputs.append({"dtype": np.dtype(d["dtype"]).name, "shape": [int(v) for v in d["shape"]],
                        "scale": float(q["scales"][0]) if len(q["scales"]) else None, "zero_point": int(q["zero_points"][0]) if len(q["zero_points"]) else None})
    inputs = []
    for i in range(n_inputs):
        d = interp.get_input_details(i)
        q = d["quantization_parameters"]
        inputs.append({"dtype": np.dtype(d["dtype"]).name, "shape": [int(v) for v in d["shape"]], "scale": float(q["scales"][0]),
                       "zero_point": int(q["zero_points"][0])})
    result.update(arena_bytes=arena, arena_min_bytes=high, inputs=inputs, outputs_detail=outputs)
    Path(out_path).write_text(json.dumps(result))


def _printing_to(log: Path, fn):
    """``fn()`` with this process's C-level stderr (file descriptor 2) going to ``log``."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(log, "wb") as out:
        os.dup2(out.fileno(), 2)
        try:
            return fn()
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _output_count(interp) -> int:
    count = 0
    while True:
        try:
            interp.get_output_details(count)
        except (IndexError, RuntimeError, ValueError):
            return count
        count += 1
        if count > 64:
            return count


def c_array(model_bytes: bytes, arena: int, ops: list[str], model: str) -> tuple[str, str, str]:
    """model_data.h, model_data.cc and op_resolver.h."""
    guard = "EDGEZOO_MODEL_DATA_H_"
    header = (f"// {model}: the int8 TensorFlow Lite model for TensorFlow Lite Micro, made by edgezoo bundle --target mcu.\n"
              f"#ifndef {guard}\n#define {guard}\n\n#include <stddef.h>\n\n"
              f"// Flash: {len(model_bytes)} bytes. Tensor arena: the smallest TFLM ran the model in on the host, rounded up to 1 KiB.\n"
              f"#define EDGEZOO_MODEL_BYTES {len(model_bytes)}\n#define EDGEZOO_TENSOR_ARENA_SIZE {arena}\n"
              f"#define EDGEZOO_OP_COUNT {len(ops)}\n\n"
              "#ifdef __cplusplus\nextern \"C\" {\n#endif\n"
              "extern const unsigned char g_model_data[];\nextern const size_t g_model_data_len;\n"
              "#ifdef __cplusplus\n}\n#endif\n\n"
              f"#endif  // {guard}\n")
    rows = [", ".join(f"0x{b:02x}" for b in model_bytes[i:i + 12]) for i in range(0, len(model_bytes), 12)]
    source = ('#include "model_data.h"\n\n'
              "// 16-byte aligned: TFLM reads the flatbuffer in place.\n"
              "#ifdef __cplusplus\nextern \"C\" {\n#endif\n"
              "alignas(16) const unsigned char g_model_data[] = {\n  " + ",\n  ".join(rows) + "\n};\n"
              f"const size_t g_model_data_len = {len(model_bytes)};\n"
              "#ifdef __cplusplus\n}\n#endif\n")
    calls = "\n".join(f"  if (resolver.{resolver_call(op)}() != kTfLiteOk) return kTfLiteError;  // {op}" for op in ops)
    resolver = ("// The operators this model uses, registered with TFLM's MicroMutableOpResolver.\n"
                "#ifndef EDGEZOO_OP_RESOLVER_H_\n#define EDGEZOO_OP_RESOLVER_H_\n\n"
                '#include "model_data.h"\n#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"\n\n'
                "using EdgezooOpResolver = tflite::MicroMutableOpResolver<EDGEZOO_OP_COUNT>;\n\n"
                f"inline TfLiteStatus EdgezooRegisterOps(EdgezooOpResolver& resolver) {{\n{calls}\n  return kTfLiteOk;\n}}\n\n"
                "#endif  // EDGEZOO_OP_RESOLVER_H_\n")
    return header, source, resolver


def tflm_version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version("tflite-micro")
    except metadata.PackageNotFoundError:
        return None


def write_mcu(staging: Path, model_path: Path, model: str, samples: list[list[np.ndarray]], litert_outputs: list[list[np.ndarray]],
              units: list[float | None], timeout: float) -> dict:
    """The MCU files in ``staging``; returns mcu.json's content. ``litert_outputs``: the LiteRT
    int8 file's dequantized outputs on ``samples``, which TFLM's must match within one step."""
    from . import portable

    if tflm_version() is None:
        raise BadInput("--target mcu needs the tflite-micro package (TensorFlow Lite Micro's interpreter): pip install tflite-micro")
    measured = measure(model_path, samples, timeout)
    worst = 0.0
    for s, expected in enumerate(litert_outputs):
        got = [portable.dequantize(measured["outputs"][f"s{s}_o{o}"], d["scale"] or 0.0, d["zero_point"] or 0)
               for o, d in enumerate(measured["outputs_detail"])]
        said = portable.compare(expected, got, units)
        if not said["ok"]:
            how = said.get("why") or "{:.1f} quantization steps apart".format(said["max_units"])
            raise BadInput(f"{model_path.name}: TensorFlow Lite Micro's outputs differ from LiteRT's ({how}): the file is not portable to TFLM as made")
        worst = max(worst, said["max_units"])
    data = model_path.read_bytes()
    header, source, resolver = c_array(data, measured["arena_bytes"], measured["ops"], model)
    (staging / "model_data.h").write_text(header)
    (staging / "model_data.cc").write_text(source)
    (staging / "op_resolver.h").write_text(resolver)
    np.savez(staging / "expected" / "tflm_int8.npz", **measured["outputs"])
    return {"model_file": model_path.name, "flash_bytes": len(data), "arena_bytes": measured["arena_bytes"],
            "arena_min_bytes": measured["arena_min_bytes"], "ops": measured["ops"], "resolver": [resolver_call(op) for op in measured["ops"]],
            "inputs": measured["inputs"], "outputs": measured["outputs_detail"], "tflm_vs_litert_max_units": worst,
            "expected_int8": "expected/tflm_int8.npz", "tflite_micro": tflm_version(),
            "arena_note": "measured on this 64-bit host with TFLM's interpreter: the smallest arena in which the model allocates and "
                          "runs, rounded up to 1 KiB; a 32-bit microcontroller's bookkeeping is smaller, its kernels' scratch may differ"}
