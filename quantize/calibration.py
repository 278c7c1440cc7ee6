"""The one calibration interface: the zoo yields sample input tuples once; each quantizer adapts
this list to its own reader (ORT CalibrationDataReader, nncf.Dataset, ai-edge-quantizer's dict)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import BadInput


@dataclass
class CalibrationSet:
    samples: list[tuple[np.ndarray, ...]]   # each a full model input tuple (batch included)
    source: str                             # said in the manifest: where the samples came from

    def as_dicts(self, names: list[str]) -> list[dict[str, np.ndarray]]:
        return [dict(zip(names, s)) for s in self.samples]

    def __len__(self) -> int:
        return len(self.samples)


def from_task_data(data, n: int, batch_size: int, split: str = "train") -> CalibrationSet:
    """About ``n`` samples of a split (at least one batch), as input tuples at the model's (fixed)
    batch size: a generator exported at batch 100 calibrates on one or two batches, not 64."""
    samples = []
    for inputs, _ in data.batches(split, batch_size=batch_size, min_batch=batch_size):
        samples.append(tuple(t.numpy() for t in inputs))
        if len(samples) * batch_size >= n:
            break
    return CalibrationSet(samples, f"{data.name} {split} split, {len(samples) * batch_size} samples")


def random_inputs(spec, n: int, seed: int = 1000) -> CalibrationSet:
    """``n`` example input tuples drawn as the model card says (seeds apart from the check's)."""
    samples = [tuple(t.numpy() for t in spec.example_inputs(seed=seed + i)) for i in range(n)]
    return CalibrationSet(samples, f"random inputs in {spec.inputs[0].value_range}, {n} samples")


def from_user_files(path: str | Path, input_specs, limit: int = 256) -> CalibrationSet:
    """--calib FILE.npy (N samples stacked on a first axis) or DIR of .npy files (one sample each).
    Never unpickles: object arrays are refused."""
    path = Path(path)
    if len(input_specs) != 1:
        raise BadInput(f"--calib {str(path)!r}: calibration files are supported for single-input models only")
    shape = tuple(input_specs[0].shape)
    dtype = input_specs[0].dtype
    if path.is_dir():
        files = sorted(path.glob("*.npy"))
        if not files:
            raise BadInput(f"--calib {str(path)!r} holds no .npy files: put one sample per .npy file in it")
        arrays = [_load_npy(f) for f in files[:limit]]
    elif path.is_file():
        stacked = _load_npy(path)
        if stacked.shape == shape:
            arrays = [stacked]
        elif stacked.ndim == len(shape) + 1 and stacked.shape[1:] == shape:
            arrays = list(stacked)
        elif stacked.shape[1:] == shape[1:] and stacked.shape[0] % shape[0] == 0:  # samples stacked on the batch axis
            arrays = list(stacked.reshape(-1, *shape))
        else:
            raise BadInput(f"--calib {str(path)!r} has shape {list(stacked.shape)}; the model takes {list(shape)}: stack samples on a first axis, shape [N, {', '.join(map(str, shape[1:]))}]")
    else:
        raise BadInput(f"--calib {str(path)!r} does not exist: pass a .npy file or a folder of .npy files")
    samples = []
    for i, a in enumerate(arrays[:limit]):
        if a.size != int(np.prod(shape)):
            raise BadInput(f"--calib {str(path)!r}: sample {i} has shape {list(a.shape)}, the model takes {list(shape)}: save samples of that shape")
        samples.append((a.reshape(shape).astype(dtype),))
    return CalibrationSet(samples, f"user file {path.name}, {len(samples)} samples")


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise BadInput(f"--calib file {str(path)!r} is not a plain numeric .npy ({exc}): save it with np.save from a numeric array") from None
    except OSError as exc:
        raise BadInput(f"--calib file {str(path)!r} cannot be read ({exc}): save it with np.save") from None
