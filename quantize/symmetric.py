"""The rounding of the "weights" int8 scheme, the same in every runtime's file: symmetric int8 in
[-127, 127], one float32 scale per output channel (max |w| / 127). quantize.simulate.with_int8_weights
is its torch twin, which the DQN's checkpoint selection plays."""

from __future__ import annotations

import numpy as np


def symmetric_int8(w: np.ndarray, reduce_axes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(int8 values, float32 scales) of ``w``: one scale per slice along the axes not in
    ``reduce_axes`` (kept as size-1 dimensions, so ``q * scale`` broadcasts back), 1 where a slice
    is all zeros."""
    w = np.asarray(w, dtype=np.float32)
    scale = np.abs(w).max(axis=reduce_axes, keepdims=True) / np.float32(127)
    scale[scale == 0] = 1
    return np.clip(np.round(w / scale), -127, 127).astype(np.int8), scale.astype(np.float32)
