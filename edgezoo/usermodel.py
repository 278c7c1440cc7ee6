"""A user's own nn.Module, named as PATH.py:ClassName, made into a ModelSpec like any zoo model."""

from __future__ import annotations

import importlib.util
import inspect
import re
import sys
import uuid
from pathlib import Path

import torch
from torch import nn

from .devices.runners import output_tuple
from .errors import BadInput, one_line
from .registry import InputSpec, ModelSpec, TrainRecipe

_REF = re.compile(r"^(?P<path>.+\.py):(?P<cls>[A-Za-z_][A-Za-z0-9_]*)$")


def is_user_ref(ref: str) -> bool:
    return bool(_REF.match(ref)) or ref.endswith(".py")


def parse_input_shape(text: str) -> tuple[int, ...]:
    parts = [p.strip() for p in text.replace("x", ",").split(",")]
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        shape = ()
    if not shape or any(d <= 0 for d in shape):
        raise BadInput(f"--input-shape {text!r} is malformed: give positive integers separated by commas, batch first, e.g. 1,3,64,64")
    return shape


def load_user_class(ref: str) -> type[nn.Module]:
    m = _REF.match(ref)
    if not m:
        raise BadInput(f"--model {ref!r}: a model of your own is named PATH.py:ClassName, e.g. models/net.py:Net")
    path = Path(m["path"])
    if not path.is_file():
        raise BadInput(f"model file {str(path)!r} does not exist: check the path before ':{m['cls']}'")
    module_name = f"edgezoo_user_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling inside the file look themselves up
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise BadInput(f"model file {str(path)!r} failed to import: {type(exc).__name__}: {one_line(exc)}") from None
    cls = getattr(module, m["cls"], None)
    if cls is None:
        found = [n for n, o in vars(module).items() if inspect.isclass(o) and issubclass(o, nn.Module) and o.__module__ == module_name]
        hint = f"it defines {', '.join(found)}" if found else "it defines no nn.Module class"
        raise BadInput(f"model file {str(path)!r} does not define class {m['cls']!r}: {hint}")
    if not (inspect.isclass(cls) and issubclass(cls, nn.Module)):
        raise BadInput(f"{m['cls']!r} in {str(path)!r} is not a torch.nn.Module subclass: name the model's class")
    return cls


def user_spec(ref: str, input_shapes: list[tuple[int, ...]]) -> ModelSpec:
    if not input_shapes:
        raise BadInput(f"--model {ref!r} needs --input-shape (batch first, e.g. 1,3,64,64): a model of your own has no model card")
    cls = load_user_class(ref)

    def build():
        try:
            return cls()
        except Exception as exc:
            raise BadInput(f"{cls.__name__}() raised {type(exc).__name__}: {one_line(exc)}; edgezoo constructs your model with no arguments") from None

    name = re.sub(r"[^A-Za-z0-9_-]", "_", cls.__name__).lower()
    inputs = tuple(InputSpec(f"input{i}" if len(input_shapes) > 1 else "input", s) for i, s in enumerate(input_shapes))
    return ModelSpec(
        name=name,
        task="user model",
        dataset="none (parity on sample inputs)",
        builder=build,
        inputs=inputs,
        load_data=None,
        metric_name=None,
        recipe=TrainRecipe(stages=(), batch_size=1),
        description=f"{cls.__name__} from {ref.rsplit(':', 1)[0]}",
        origin=f"{Path(ref.rsplit(':', 1)[0]).resolve()}:{cls.__name__}",
    )


def check_forward(model: nn.Module, spec: ModelSpec, source: str) -> None:
    try:
        with torch.inference_mode():
            out = model(*spec.example_inputs())
    except Exception as exc:
        shapes = ", ".join("x".join(map(str, i.shape)) for i in spec.inputs)
        raise BadInput(f"{source}: forward raised on an example input of shape {shapes}: {type(exc).__name__}: {one_line(exc)}; fix the model or --input-shape") from None
    outs = output_tuple(out)
    if not outs or not all(isinstance(o, torch.Tensor) for o in outs):
        raise BadInput(f"{source}: forward must return a tensor or a tuple of tensors, got {type(out).__name__}")

