"""Loading and saving checkpoints without executing anything a file carries."""

from __future__ import annotations

import os
import pickletools
import warnings
import zipfile
from pathlib import Path

import torch
from torch import nn

from .errors import BadInput, one_line
from .fileio import atomic_open

# Common wrappers around a state_dict in training checkpoints.
_NESTED_KEYS = ("state_dict", "model_state_dict", "model")
# A torch checkpoint is a zip of stored (uncompressed) records: what its directory declares it
# inflates to stays near the file's size. Far beyond it, it is a zip bomb.
_MAX_INFLATION = 2.0
_SLACK_BYTES = 1 << 20
# How much of a file that is not a zip the pickle scan reads (the pickle comes first).
_SCAN_BYTES = 64 << 20


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A state_dict from a safetensors file or a torch file, refusing pickled code."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"weights file {str(path)!r} does not exist: pass --weights an existing .pt/.pth/.safetensors file")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise BadInput(f"weights file {str(path)!r} is not a readable safetensors file ({one_line(exc)}): re-save it with safetensors.torch.save_file") from None
    _refuse_zip_bomb(path)
    try:
        # A file object, not a path: torch.load hands a *.safetensors path to safetensors whatever
        # weights_only says, and we want one loader per suffix.
        with open(path, "rb") as f, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj = torch.load(f, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError... for bad files
        if _carries_code(path):
            raise BadInput(f"weights file {str(path)!r} carries pickled code and was refused (nothing was executed): save a plain state_dict with torch.save(model.state_dict(), f) or safetensors") from None
        # Not torch's text: it suggests weights_only=False, the wrong advice for an untrusted file.
        raise BadInput(f"weights file {str(path)!r} is corrupt or not a torch checkpoint ({type(exc).__name__}): re-save it with torch.save(model.state_dict(), f)") from None
    for key in _NESTED_KEYS:
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise BadInput(f"weights file {str(path)!r} holds a {type(obj).__name__}, not a state_dict of tensors: save model.state_dict()")
    for key, value in obj.items():
        # Right names and shapes, but no values: a meta tensor holds none, a sparse one is not a
        # dense weight any exporter can store.
        if value.is_meta or value.layout != torch.strided:
            kind = "meta" if value.is_meta else f"{value.layout} (sparse)".replace("torch.", "")
            raise BadInput(f"weights file {str(path)!r}: tensor {key!r} is a {kind} tensor, not dense values: save the trained model's state_dict (call .to_dense() on sparse tensors)")
    return obj


def _refuse_zip_bomb(path: Path) -> None:
    """Reads the zip directory's declared sizes, never the records, and refuses what would inflate
    far beyond the file."""
    size = path.stat().st_size
    try:
        if not zipfile.is_zipfile(path):  # which itself raises on some damaged end records
            return
        with zipfile.ZipFile(path) as zf:
            declared = sum(info.file_size for info in zf.infolist())
    except Exception as exc:  # zipfile raises BadZipFile, NotImplementedError, struct.error, ... on crafted records
        raise BadInput(f"weights file {str(path)!r} is a damaged zip ({type(exc).__name__}: {one_line(exc)}): re-save it with torch.save(model.state_dict(), f)") from None
    if declared > _MAX_INFLATION * size + _SLACK_BYTES:
        raise BadInput(f"weights file {str(path)!r} declares {declared:,} bytes of records in a file of {size:,} bytes: refused unread (a torch checkpoint stores its records uncompressed); re-save it with torch.save")


def load_into(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """strict=True load that names the first mismatching key instead of torch's wall of text."""
    own = model.state_dict()
    for key, value in own.items():
        if key not in state:
            raise BadInput(f"weights {source!r} do not match the model: key {key!r} is missing from the file; use weights saved from this architecture")
        if tuple(state[key].shape) != tuple(value.shape):
            raise BadInput(
                f"weights {source!r} do not match the model: {key!r} has shape {list(state[key].shape)} in the file, {list(value.shape)} in the model; use weights saved from this architecture"
            )
    for key in state:
        if key not in own:
            raise BadInput(f"weights {source!r} do not match the model: unexpected key {key!r} in the file; use weights saved from this architecture")
    model.load_state_dict(state, strict=True)


def save_state_dict(state: dict[str, torch.Tensor], path: Path) -> None:
    """Atomic save through a file object (torch derives the zip's record names from a path's name,
    so saving under a temporary path and renaming would change the bytes)."""
    with atomic_open(path, "wb") as f:
        torch.save({k: v.detach().cpu().contiguous() for k, v in state.items()}, f)


# Opcodes that import or call something: a plain state_dict needs them only for torch's own
# rebuild helpers, which the weights-only unpickler accepts, so after its refusal they mean code.
_CODE_OPCODES = {"GLOBAL", "STACK_GLOBAL", "INST", "OBJ", "REDUCE", "NEWOBJ", "NEWOBJ_EX", "BUILD"}


def _carries_code(path: Path) -> bool:
    """Static scan of the pickle stream (never executed): a zip checkpoint's data.pkl, else the file.
    Torch's refusal says "Unsupported operand" for garbage and for a bare pickle with code alike."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                name = next((n for n in zf.namelist() if n.endswith("data.pkl")), None)
                if name is None:
                    return False
                if zf.getinfo(name).file_size > _SCAN_BYTES:
                    return False
                stream = zf.read(name)
        else:
            with open(path, "rb") as f:
                stream = f.read(_SCAN_BYTES)
        return any(op.name in _CODE_OPCODES for op, _, _ in pickletools.genops(stream))
    except Exception:  # not a parseable pickle stream: corrupt, not code
        return False

