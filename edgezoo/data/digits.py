"""scikit-learn's digits (1,797 8x8 scans, shipped with the package), as images of any size."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .base import TaskData


def _split(n: int, seed: int, fractions=(0.6, 0.2, 0.2)) -> dict[str, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    a = int(fractions[0] * n)
    b = a + int(fractions[1] * n)
    return {"train": order[:a], "val": order[a:b], "test": order[b:]}


def load_digits_images(input_shape: tuple[int, ...], seed: int = 1234) -> TaskData:
    """Digits scaled to [0, 1], shifted by up to one pixel when augmenting, up-sampled bilinearly
    to ``input_shape``'s height and width and replicated over its channels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)
    labels = digits.target.astype(np.int64)
    channels, height, width = input_shape[-3:]

    def make_inputs(raw: np.ndarray, augment: bool, rng: np.random.Generator | None) -> tuple[torch.Tensor, ...]:
        x = torch.from_numpy(raw).unsqueeze(1)
        if augment:
            padded = F.pad(x, (1, 1, 1, 1))
            dy, dx = rng.integers(0, 3, size=2)
            x = padded[:, :, dy : dy + 8, dx : dx + 8]
        x = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)
        return (x.expand(-1, channels, -1, -1).contiguous(),)

    idx = _split(len(labels), seed)
    return TaskData(
        name="digits",
        raw={k: images[v] for k, v in idx.items()},
        targets={k: labels[v] for k, v in idx.items()},
        make_inputs=make_inputs,
    )
