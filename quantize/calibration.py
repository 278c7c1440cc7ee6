"""The one calibration interface: the zoo yields sample input tuples once; each quantizer adapts
this list to its own reader (ORT CalibrationDataReader, nncf.Dataset, ai-edge-quantizer's dict)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import BadInput, one_line


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
    per_call = data.per_call(batch_size)
    for inputs, _ in data.batches(split, batch_size=per_call, min_batch=per_call):
        samples.append(tuple(t.numpy() for t in inputs))
        if len(samples) * per_call >= n:
            break
    return CalibrationSet(samples, f"{data.name} {split} split, {len(samples) * per_call} samples")


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
        files, skipped = _regular_npy_files(path)
        if skipped:
            from ..progress import warn

            warn(f"--calib {str(path)!r}: skipped what is not a regular file: {', '.join(skipped)}")
        if not files:
            raise BadInput(f"--calib {str(path)!r} holds no regular .npy files: put one sample per .npy file in it")
        arrays = [load_npy(f) for f in files[:limit]]
    elif path.is_file():
        stacked = load_npy(path)
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
        where = f"--calib {str(files[i] if path.is_dir() else path)!r}" + ("" if path.is_dir() else f": sample {i}")
        if a.size != int(np.prod(shape)):
            raise BadInput(f"{where} has shape {list(a.shape)}, the model takes {list(shape)}: save samples of that shape")
        if np.issubdtype(a.dtype, np.floating) and not np.isfinite(a).all():
            raise BadInput(f"{where} holds NaN or inf values: calibration needs finite samples; drop or repair that sample")
        samples.append((a.reshape(shape).astype(dtype),))
    return CalibrationSet(samples, f"user file {path.name}, {len(samples)} samples")


def load_npy(path: Path, what: str | None = None, kinds: str = "biuf") -> np.ndarray:
    """A plain .npy of numbers (dtype kinds ``kinds``), its header checked against the file's size
    before anything is allocated (a header may declare terabytes in a file of a few bytes)."""
    from numpy.lib import format as npy_format

    what = what or f"--calib file {str(path)!r}"
    try:
        with open(path, "rb") as f:
            version = npy_format.read_magic(f)
            read_header = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
            shape, fortran, dtype = read_header(f, max_header_size=10_000)
            data_bytes = path.stat().st_size - f.tell()
            if dtype.hasobject or dtype.kind not in kinds:
                raise BadInput(f"{what} holds {dtype} values, not numbers: save a numeric array (float32) with np.save")
            count = int(np.prod(shape, dtype=object))
            if count == 0:
                raise BadInput(f"{what} is empty (shape {list(shape)}): save at least one sample")
            if count * dtype.itemsize != data_bytes:
                raise BadInput(f"{what} is truncated or padded: its header declares shape {list(shape)} ({count * dtype.itemsize} bytes of data), the file holds {data_bytes}: save it again with np.save")
            return np.load(path, allow_pickle=False)
    except BadInput:
        raise
    except OSError as exc:
        raise BadInput(f"{what} cannot be read ({exc.strerror or exc}): save it with np.save") from None
    except Exception as exc:  # numpy's header parser raises ValueError, SyntaxError, TokenError, ... on bad bytes
        raise BadInput(f"{what} is not a plain numeric .npy ({type(exc).__name__}: {one_line(exc)}): save it with np.save from a numeric array") from None


def _regular_npy_files(folder: Path) -> tuple[list[Path], list[str]]:
    """The folder's regular .npy files, and what was skipped: opening a FIFO would block forever,
    a socket or a broken link cannot be read."""
    import stat

    files, skipped = [], []
    for f in sorted(folder.glob("*.npy")):
        try:
            mode = f.stat().st_mode  # follows links: a broken link raises
        except OSError:
            skipped.append(f"{f.name} (broken link)")
            continue
        if stat.S_ISREG(mode):
            files.append(f)
        else:
            skipped.append(f"{f.name} ({'FIFO' if stat.S_ISFIFO(mode) else 'socket' if stat.S_ISSOCK(mode) else 'not a regular file'})")
    return files, skipped
