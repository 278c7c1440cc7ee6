"""A user's own nn.Module, named as PATH.py:NAME (a class, or a function returning a module), made
into a ModelSpec like any zoo model: its constructor arguments (--init-args, JSON literals), its
inputs by name, shape, dtype and value range (--input), in forward's order."""

from __future__ import annotations

import importlib.util
import inspect
import json
import math
import re
import sys
import types
import typing
import uuid
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .devices.runners import output_tuple
from .errors import BadInput, did_you_mean, one_line
from .registry import InputSpec, ModelSpec, TrainRecipe

_REF = re.compile(r"^(?P<path>.+\.py):(?P<name>[A-Za-z_][A-Za-z0-9_]*)$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
# What --input may declare: dtypes torch, ONNX and OpenVINO all name. A converter that cannot keep
# one says so in its row (litert-torch stores int64 as int32).
DTYPES = ("float32", "float16", "float64", "int64", "int32", "int16", "int8", "uint8", "bool")
# Values drawn for random inputs when --input gives no LOW-HIGH: [0, 1) for floats, {0, 1} for
# integers (valid for any embedding table or mask; give the real range for token ids).
DEFAULT_RANGES = {"float": (0.0, 1.0), "int": (0, 2), "bool": (0, 2)}
INPUT_FORM = "NAME:SHAPE[:DTYPE[:LOW-HIGH]], e.g. input_ids:1x32:int64:0-65 or src:12x1x64"


def is_user_ref(ref: str) -> bool:
    return bool(_REF.match(ref)) or ref.endswith(".py")


def parse_input_shape(text: str) -> tuple[int, ...]:
    shape = _shape(text)
    if shape is None:
        raise BadInput(f"--input-shape {text!r} is malformed: give positive integers separated by commas, batch first, e.g. 1,3,64,64")
    return shape


def _shape(text: str) -> tuple[int, ...] | None:
    parts = [p.strip() for p in text.replace("x", ",").split(",")]
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        return None
    return shape if shape and all(d > 0 for d in shape) else None


def _kind(dtype: str) -> str:
    return "bool" if dtype == "bool" else "float" if dtype.startswith("float") else "int"


def parse_input(text: str) -> InputSpec:
    """--input NAME:SHAPE[:DTYPE[:LOW-HIGH]] as an InputSpec (high exclusive for integers)."""
    parts = text.split(":")
    if not 2 <= len(parts) <= 4:
        raise BadInput(f"--input {text!r} does not parse: write {INPUT_FORM}")
    name, shape_text = parts[0].strip(), parts[1]
    if not _NAME.match(name):
        raise BadInput(f"--input {text!r}: the name {name!r} must start with a letter or _ and hold only letters, digits, _ and . "
                       "(it becomes the exported files' input name)")
    shape = _shape(shape_text)
    if shape is None:
        raise BadInput(f"--input {text!r}: the shape {shape_text!r} must be positive integers joined by x, e.g. 1x3x32x32")
    dtype = parts[2].strip() if len(parts) > 2 else "float32"
    if dtype not in DTYPES:
        raise BadInput(f"--input {text!r}: dtype {dtype!r} is not one of {', '.join(DTYPES)}; {did_you_mean(dtype, DTYPES, cutoff=0.5)}".rstrip("; "))
    kind = _kind(dtype)
    value_range = DEFAULT_RANGES[kind]
    if len(parts) > 3:
        value_range = _value_range(parts[3], kind, dtype, text)
    return InputSpec(name, shape, dtype, (float(value_range[0]), float(value_range[1])))


def _value_range(text: str, kind: str, dtype: str, whole: str) -> tuple[float, float]:
    """LOW-HIGH, either of them negative ("-1-1"): the one split at a '-' where both sides are numbers."""
    ranges = []
    for i, ch in enumerate(text):
        if ch == "-" and 0 < i < len(text) - 1:
            try:
                ranges.append((float(text[:i]), float(text[i + 1:])))
            except ValueError:
                continue
    if len(ranges) != 1 or not all(math.isfinite(v) for v in ranges[0]):
        raise BadInput(f"--input {whole!r}: the range {text!r} must be LOW-HIGH, two finite numbers, e.g. 0-65 or -1-1")
    low, high = ranges[0]
    if not high > low:
        raise BadInput(f"--input {whole!r}: the range {text!r} is empty: HIGH must exceed LOW (high is exclusive for integers)")
    if kind != "float":
        if low != int(low) or high != int(high):
            raise BadInput(f"--input {whole!r}: a {dtype} input's range {text!r} must be whole numbers (high exclusive), e.g. 0-65")
        info = (0, 2) if kind == "bool" else (torch.iinfo(getattr(torch, dtype)).min, torch.iinfo(getattr(torch, dtype)).max + 1)
        if low < info[0] or high > info[1]:
            raise BadInput(f"--input {whole!r}: the range {text!r} does not fit {dtype} ([{info[0]}, {info[1]}))")
    return low, high


def parse_init_args(text: str | None) -> dict | None:
    """--init-args JSON: an object of keyword arguments, JSON literals only (nothing is evaluated)."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(f"--init-args {text!r} is not JSON ({exc.msg} at character {exc.pos}): give an object, e.g. '{{\"d_model\": 64, \"nhead\": 4}}'") from None
    if not isinstance(value, dict):
        raise BadInput(f"--init-args {text!r} is a JSON {type(value).__name__}, not an object: give keyword arguments, e.g. '{{\"width\": 8}}'")
    return value


def load_user_builder(ref: str) -> Callable[..., nn.Module]:
    """The class or function PATH.py:NAME names (the file is imported, as `python PATH.py` would run it)."""
    m = _REF.match(ref)
    if not m:
        raise BadInput(f"--model {ref!r}: a model of your own is named PATH.py:NAME, NAME a class or a function returning an nn.Module, e.g. models/net.py:Net")
    path = Path(m["path"])
    if not path.is_file():
        raise BadInput(f"model file {str(path)!r} does not exist: check the path before ':{m['name']}'")
    module_name = f"edgezoo_user_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling inside the file look themselves up
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise BadInput(f"model file {str(path)!r} failed to import: {type(exc).__name__}: {one_line(exc)}") from None
    builder = getattr(module, m["name"], None)
    if builder is None:
        found = [n for n, o in vars(module).items() if inspect.isclass(o) and issubclass(o, nn.Module) and o.__module__ == module_name]
        hint = f"it defines {', '.join(found)}" if found else "it defines no nn.Module class"
        raise BadInput(f"model file {str(path)!r} does not define {m['name']!r}: {hint}")
    if inspect.isclass(builder):
        if not issubclass(builder, nn.Module):
            raise BadInput(f"{m['name']!r} in {str(path)!r} is a class but not a torch.nn.Module subclass: name the model's class, or a function returning one")
    elif not callable(builder):
        raise BadInput(f"{m['name']!r} in {str(path)!r} is a {type(builder).__name__}, not a class or function: name the model's class, or a function returning one")
    return builder


def _signature(fn) -> inspect.Signature | None:
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError):  # some builtins and C extensions have none
        return None


def check_init_args(builder, kwargs: dict, label: str) -> None:
    """The arguments bind to NAME's signature, or one line naming what it takes."""
    sig = _signature(builder)
    if sig is None:
        return
    try:
        sig.bind(**kwargs)
    except TypeError as exc:
        given = json.dumps(kwargs) if kwargs else "no --init-args"
        raise BadInput(f"{label}{sig} cannot be called with {given}: {exc}; pass --init-args a JSON object of its keyword arguments") from None


def user_spec(ref: str, inputs: list[InputSpec], init_args: dict | None = None) -> ModelSpec:
    if not inputs:
        raise BadInput(f"--model {ref!r} needs its inputs: --input {INPUT_FORM} (one per forward argument), or --input-shape 1,3,64,64 "
                       "for one float input: a model of your own has no model card")
    names = [i.name for i in inputs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise BadInput(f"--input names {', '.join(twice)} more than once: each input needs its own name")
    builder = load_user_builder(ref)
    label = ref.rsplit(":", 1)[1]
    init_args = dict(init_args or {})
    check_init_args(builder, init_args, label)

    def build(**kwargs):
        try:
            model = builder(**kwargs)
        except Exception as exc:
            raise BadInput(f"{label}({_call_args(kwargs)}) raised {type(exc).__name__}: {one_line(exc)}; check --init-args") from None
        if not isinstance(model, nn.Module):
            raise BadInput(f"{label}({_call_args(kwargs)}) returned a {type(model).__name__}, not a torch.nn.Module: name a class or a function returning a module")
        return model

    path = ref.rsplit(":", 1)[0]
    return ModelSpec(
        name=re.sub(r"[^A-Za-z0-9_-]", "_", label).lower(),
        task="user model",
        dataset="none (parity on sample inputs)",
        builder=build,
        inputs=tuple(inputs),
        load_data=None,
        metric_name=None,
        recipe=TrainRecipe(stages=(), batch_size=1),
        build_kwargs=init_args,
        description=f"{label}({_call_args(init_args)}) from {path}",
        origin=f"{Path(path).resolve()}:{label}",
    )


def inputs_from_shapes(shapes: list[tuple[int, ...]]) -> list[InputSpec]:
    """--input-shape's shorthand: float32 inputs in [0, 1), named input (or input0, input1, ...)."""
    return [InputSpec(f"input{i}" if len(shapes) > 1 else "input", tuple(s)) for i, s in enumerate(shapes)]


def _call_args(kwargs: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items())


# What an exported file can carry in and out: tensors. Annotations naming these are refused early.
_TENSOR_TYPES = (torch.Tensor, inspect.Parameter.empty, typing.Any)
_WRAP = ("exported files take and return tensors only: wrap the model in an nn.Module whose forward takes the tensors "
         "(e.g. x, edge_index) and builds what the model wants from them, then returns tensors")


def _tensor_annotation(ann) -> bool:
    if ann in _TENSOR_TYPES:
        return True
    if isinstance(ann, str):
        return "Tensor" in ann
    args = typing.get_args(ann)
    if typing.get_origin(ann) in (typing.Union, types.UnionType) and args:
        return all(a is type(None) or _tensor_annotation(a) for a in args)
    return False


def check_signature(model: nn.Module, spec: ModelSpec, source: str) -> None:
    """forward takes the --input tensors in order, and nothing an exported file cannot carry."""
    sig = _signature(model.forward)
    if sig is None:
        return
    params = list(sig.parameters.values())
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    varargs = any(p.kind == p.VAR_POSITIONAL for p in params)
    required = [p for p in positional if p.default is p.empty]
    keyword_only = [p.name for p in params if p.kind == p.KEYWORD_ONLY and p.default is p.empty]
    if keyword_only:
        raise BadInput(f"{source}: forward's keyword-only argument(s) {', '.join(keyword_only)} cannot be fed from an exported file's inputs: "
                       "give them defaults, or make them positional and pass an --input for each")
    n = len(spec.inputs)
    if n < len(required) or (n > len(positional) and not varargs):
        takes = f"{len(required)}" if len(required) == len(positional) else f"{len(required)} to {len(positional)}"
        raise BadInput(f"{source}: forward{sig} takes {takes} tensor(s), {n} given by --input ({', '.join(i.name for i in spec.inputs)}): "
                       "give one --input per argument, in forward's order")
    try:
        hints = typing.get_type_hints(model.forward)
    except Exception:  # annotations naming what the file does not import: read them as written
        hints = {p.name: p.annotation for p in params}
    for p in positional[:n]:
        ann = hints.get(p.name, p.annotation)
        if not _tensor_annotation(ann):
            what = getattr(ann, "__name__", None) or str(ann)
            raise BadInput(f"{source}: forward's argument {p.name!r} is annotated {what}, not a tensor: {_WRAP}")


_NOT_A_TENSOR = re.compile(r"'Tensor' object (has no attribute|is not subscriptable|is not a mapping)|object is not a mapping|must be (a )?(dict|Data|list)")


def check_forward(model: nn.Module, spec: ModelSpec, source: str) -> None:
    if spec.origin is not None:
        check_signature(model, spec, source)
    try:
        with torch.inference_mode():
            out = model(*spec.example_inputs())
    except Exception as exc:
        shapes = ", ".join(f"{i.name} {'x'.join(map(str, i.shape))} {i.dtype}" for i in spec.inputs)
        hint = f"forward seems to want something other than tensors: {_WRAP}" if _NOT_A_TENSOR.search(str(exc)) else \
            "fix the model or the inputs (--input NAME:SHAPE:DTYPE:LOW-HIGH; an index out of range wants the real LOW-HIGH)"
        raise BadInput(f"{source}: forward raised on example inputs ({shapes}): {type(exc).__name__}: {one_line(exc)}; {hint}") from None
    outs = output_tuple(out)
    if not outs or not all(isinstance(o, torch.Tensor) for o in outs):
        raise BadInput(f"{source}: forward must return a tensor or a tuple of tensors, got {type(out).__name__}: exported files return "
                       "tensors only; wrap the model in an nn.Module whose forward returns them (a dict's values as a tuple, in a fixed order)")
