"""A user's --data for a model of their own: one array per input name (and optionally ``target``
and ``split``), samples stacked on a first axis, in an .npz file or a folder of .npy files. Read
without unpickling anything. It becomes a TaskData, so calibration, the torch reference and every
artifact's task metric go through the zoo's own code.

Each input's array is either rows of the model's batch axis, shape [N, *shape[1:]] (edgezoo makes
batches of the input's first dimension, padding the last), or N whole inputs, shape [N, *shape]
(one call each; outputs concatenated on their first axis, as a sequence-first model's are).
``target``: one per sample on the same first axis. ``split``: one of train, val, test per sample
(calibration on train, --max-drop's choices on val, the metric on test); without it, every role
uses all of the data, and the manifest says so."""

from __future__ import annotations

import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .data.base import TaskData, regression_loss
from .errors import BadInput, one_line
from .metrics import USER_METRICS
from .registry import InputSpec

SPLITS = ("train", "val", "test")
RESERVED = ("target", "split")
MAX_DATA_BYTES = 4 << 30   # what a data file may declare it inflates to, read before anything is allocated


@dataclass
class UserData:
    task: TaskData
    n: int                      # samples (rows, or whole inputs)
    whole: bool                 # each sample is a whole model input
    split_given: bool
    has_target: bool
    summary: str                # for the manifest's dataset field


def load_user_data(path: str | Path, inputs: tuple[InputSpec, ...], metric: str | None) -> UserData:
    path = Path(path)
    if metric is not None and metric not in USER_METRICS:
        raise BadInput(f"--metric {metric!r}: choose one of {', '.join(USER_METRICS)}")
    arrays = _read(path)
    what = f"--data {str(path)!r}"
    names = [i.name for i in inputs]
    missing = [n for n in names if n not in arrays]
    if missing:
        held = ", ".join(sorted(arrays)) or "nothing"
        raise BadInput(f"{what} has no array named {missing[0]!r} (it holds {held}): name one array after each --input ({', '.join(names)}), plus optionally target and split")
    extra = sorted(set(arrays) - set(names) - set(RESERVED))
    if extra:
        raise BadInput(f"{what} holds {', '.join(repr(e) for e in extra)}, which is no --input of the model ({', '.join(names)}) nor target or split: rename or remove it")

    columns, whole = [], None
    for spec in inputs:
        a = arrays[spec.name]
        shape = tuple(spec.shape)
        if a.ndim == len(shape) + 1 and a.shape[1:] == shape and len(shape) > 0:
            form = True
        elif a.ndim == len(shape) and a.shape[1:] == shape[1:]:
            form = False
        else:
            raise BadInput(f"{what}: array {spec.name!r} has shape {list(a.shape)}; --input {spec.name} is {'x'.join(map(str, shape))}: "
                           f"stack samples on a first axis, shape [N, {', '.join(map(str, shape[1:]))}] (rows of the batch axis) or [N, {', '.join(map(str, shape))}] (whole inputs)")
        if whole is not None and form != whole:
            raise BadInput(f"{what}: array {spec.name!r} stacks {'whole inputs' if form else 'batch rows'} and another array the other way: stack every input alike")
        whole = form
        columns.append(_as_dtype(a, spec, what))
    n = len(columns[0])
    for spec, a in zip(inputs, columns):
        if len(a) != n:
            raise BadInput(f"{what}: array {spec.name!r} holds {len(a)} samples, {inputs[0].name!r} holds {n}: every array needs the same first axis")
    if n == 0:
        raise BadInput(f"{what} holds no samples: stack at least one on the first axis")

    target = arrays.get("target")
    if metric is not None and target is None:
        raise BadInput(f"{what} has no 'target' array: --metric {metric} compares the outputs with it; add target (one per sample) or drop --metric")
    if target is not None:
        if len(target) != n:
            raise BadInput(f"{what}: 'target' holds {len(target)} samples, the inputs {n}: one target per sample on the first axis")
        if metric in ("accuracy", "top5") and not np.issubdtype(target.dtype, np.integer):
            raise BadInput(f"{what}: 'target' holds {target.dtype} values; --metric {metric} needs integer class indices")
        if np.issubdtype(target.dtype, np.floating) and not np.isfinite(target).all():
            raise BadInput(f"{what}: 'target' holds NaN or inf values: drop or repair those samples")

    roles, split_given = _splits(arrays.get("split"), n, what)
    per_call = 1 if whole else inputs[0].shape[0]
    too_few = [r for r in ("train", "test") if len(roles[r]) == 0]
    if too_few:
        raise BadInput(f"{what}: the {too_few[0]} split is empty: mark some samples {too_few[0]} in 'split', or leave 'split' out")
    if not whole:
        for spec in inputs[1:]:
            if spec.shape[0] != per_call:
                raise BadInput(f"{what}: batch rows stack on every input's first axis, but {spec.name!r} takes {spec.shape[0]} and "
                               f"{inputs[0].name!r} {per_call}: give whole inputs, shape [N, *shape], instead")

    def make_inputs(idx: np.ndarray, augment: bool, rng) -> tuple[torch.Tensor, ...]:
        if whole:
            return tuple(torch.from_numpy(np.ascontiguousarray(a[idx].reshape(-1, *a.shape[2:]))) for a in columns)
        return tuple(torch.from_numpy(np.ascontiguousarray(a[idx])) for a in columns)

    name = path.name
    if split_given:
        summary = f"user data {name}: {n} {'inputs' if whole else 'samples'}, split {', '.join(f'{r} {len(roles[r])}' for r in SPLITS)}"
    else:
        summary = f"user data {name}: {n} {'inputs' if whole else 'samples'}, no split given: calibration, selection and the metric all use all of it"
    labels = target if target is not None else np.zeros(n, np.int64)
    task = TaskData(
        name=f"user data {name}" + ("" if split_given else " (all of it)"),
        raw={r: idx for r, idx in roles.items()},
        targets={r: labels[idx] for r, idx in roles.items()},
        make_inputs=make_inputs,
        metric_name=metric or "mse",
        loss=regression_loss,
        samples_per_call=1 if whole else None,
    )
    return UserData(task, n, whole, split_given, target is not None, summary)


def check_metric_fits(model: torch.nn.Module, data: UserData, batch: int, metric: str) -> None:
    """Torch's first batch scored with the metric: a metric that cannot read the model's outputs
    against the targets is one line now, not a traceback after the exports."""
    from .devices.runners import output_tuple

    task = data.task
    x, y = next(task.batches("test", task.per_call(batch)))
    with torch.inference_mode():
        out = output_tuple(model(*x))[0].numpy()
    try:
        value = task.metric(out, y.numpy())
    except Exception as exc:
        raise BadInput(f"--metric {metric} does not fit the model's outputs: first output {list(out.shape)} against target {list(y.shape)} "
                       f"({type(exc).__name__}: {one_line(exc)}); {_METRIC_NEEDS[metric]}") from None
    if not np.isfinite(value):
        raise BadInput(f"--metric {metric} of torch's outputs on the data is {value}: check the targets and the model's outputs")


_METRIC_NEEDS = {
    "accuracy": "accuracy takes class scores on the output's last axis and one integer class per score vector",
    "top5": "top5 takes class scores on the output's last axis and one integer class per score vector",
    "mse": "mse takes a target of the output's size",
    "rmse": "rmse takes a target of the output's size",
    "mae": "mae takes a target of the output's size",
}


def _as_dtype(a: np.ndarray, spec: InputSpec, what: str) -> np.ndarray:
    want = np.dtype(spec.dtype)
    same_kind = (want.kind == a.dtype.kind) or (want.kind in "iu" and a.dtype.kind in "iu")
    if not same_kind:
        raise BadInput(f"{what}: array {spec.name!r} holds {a.dtype} values; --input {spec.name} is {spec.dtype}: save it as {spec.dtype} "
                       "(or declare the input's dtype with --input NAME:SHAPE:DTYPE)")
    if want.kind in "iu" and a.size and (a.min() < np.iinfo(want).min or a.max() > np.iinfo(want).max):
        raise BadInput(f"{what}: array {spec.name!r} holds values outside {spec.dtype}'s range: save it as {spec.dtype}")
    if want.kind == "f" and not np.isfinite(a).all():
        raise BadInput(f"{what}: array {spec.name!r} holds NaN or inf values: drop or repair those samples")
    return a.astype(want, copy=False)


def _splits(split: np.ndarray | None, n: int, what: str) -> tuple[dict[str, np.ndarray], bool]:
    everything = np.arange(n)
    if split is None:
        return {r: everything for r in SPLITS}, False
    if split.shape != (n,) or split.dtype.kind not in "U":
        raise BadInput(f"{what}: 'split' must be {n} strings (train, val or test, one per sample), got {split.dtype} of shape {list(split.shape)}")
    unknown = sorted(set(split.tolist()) - set(SPLITS))
    if unknown:
        raise BadInput(f"{what}: 'split' holds {unknown[0]!r}: each sample is train, val or test")
    roles = {r: np.flatnonzero(split == r) for r in SPLITS}
    if len(roles["val"]) == 0:
        roles["val"] = roles["train"]   # --max-drop chooses on the calibration samples, never on test
    return roles, True


def _read(path: Path) -> dict[str, np.ndarray]:
    what = f"--data {str(path)!r}"
    if path.is_dir():
        arrays = {}
        for f in sorted(path.glob("*.npy")):
            try:
                regular = stat.S_ISREG(f.stat().st_mode)
            except OSError:
                regular = False
            if not regular:
                raise BadInput(f"{what}: {f.name} is not a regular file: put one .npy file per input (and target, split) in the folder")
            arrays[f.stem] = _load_array(f, f"{what}: {f.name}")
        if not arrays:
            raise BadInput(f"{what} holds no .npy files: save one array per input name (np.save('NAME.npy', ...)), or pass an .npz")
        return arrays
    if not path.is_file():
        raise BadInput(f"{what} does not exist: pass an .npz file (np.savez) or a folder of .npy files, one array per input name")
    if path.suffix == ".npy":
        raise BadInput(f"{what} is one .npy file: --data needs an array per input name; pass an .npz (np.savez(f, NAME=...)) or a folder of NAME.npy files")
    try:
        with zipfile.ZipFile(path) as zf:
            declared = sum(i.file_size for i in zf.infolist())
    except Exception as exc:
        raise BadInput(f"{what} is not an .npz file ({type(exc).__name__}): save it with np.savez(f, NAME=array, ...)") from None
    if declared > MAX_DATA_BYTES:
        raise BadInput(f"{what} declares {declared:,} bytes of arrays (bound {MAX_DATA_BYTES:,}): refused unread; pass fewer samples")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {name: _checked(npz[name], f"{what}: array {name!r}") for name in npz.files}
    except BadInput:
        raise
    except Exception as exc:  # object arrays (pickle), damaged members, bad headers
        raise BadInput(f"{what} cannot be read without unpickling or is damaged ({type(exc).__name__}: {one_line(exc)}): save plain numeric arrays with np.savez") from None


def _load_array(path: Path, what: str) -> np.ndarray:
    from .quantize.calibration import load_npy

    return _checked(load_npy(path, what, kinds="biufU"), what)


def _checked(a: np.ndarray, what: str) -> np.ndarray:
    if a.dtype.hasobject or a.dtype.kind not in "biufU":
        raise BadInput(f"{what} holds {a.dtype} values: save numbers (and split as strings)")
    if a.ndim == 0:
        raise BadInput(f"{what} is a scalar: stack samples on a first axis")
    return a
