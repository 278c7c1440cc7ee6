"""scikit-learn's digits (1,797 8x8 scans, shipped with the package), as images of any size."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..manifest import ImagePreprocess
from .base import TaskData, split_indices

DIGIT_LABELS = tuple(str(d) for d in range(10))


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

    idx = split_indices(len(labels), seed)
    return TaskData(
        name="digits",
        raw={k: images[v] for k, v in idx.items()},
        targets={k: labels[v] for k, v in idx.items()},
        make_inputs=make_inputs,
        labels=DIGIT_LABELS,
        image=ImagePreprocess(layout="NCHW", color="grayscale", resize="bilinear", scale=1 / 255, mean=[0.0] * channels,
                              std=[1.0] * channels, source_size=[8, 8], foreground="bright on dark",
                              note="scikit-learn's 8x8 digit scans: a centred digit filling the frame"),
    )


def load_digits_rows(input_shape: tuple[int, ...], seed: int = 1234) -> TaskData:
    """Digits as a sequence of 8 row tokens of 8 pixels each, (batch, 8, 8), same splits as the
    images. Baseline: multinomial logistic regression on the 64 pixels, same training split."""
    from sklearn.linear_model import LogisticRegression

    images = load_digits_images((1, 8, 8), seed)

    def make_inputs(raw: np.ndarray, augment: bool, rng: np.random.Generator | None) -> tuple[torch.Tensor, ...]:
        return (images.make_inputs(raw, augment, rng)[0][:, 0],)

    flat = {k: v.reshape(len(v), -1) for k, v in images.raw.items()}
    linear = LogisticRegression(max_iter=2000).fit(flat["train"], images.targets["train"])
    baseline = float(linear.score(flat["test"], images.targets["test"]))
    return TaskData(name="digits rows", raw=images.raw, targets=images.targets, make_inputs=make_inputs,
                    baseline=("logistic regression on the pixels", baseline), labels=DIGIT_LABELS)


def load_digit_requests(input_shape: tuple[int, ...], seed: int = 4321) -> TaskData:
    """Inputs for a class-conditional digit generator: fixed Gaussian noise of ``input_shape``'s
    width and a requested digit, the ten digits in equal shares. Nothing here is training data
    (the generator learns from the digit images); these fix what is sampled and scored."""
    width = input_shape[1]
    per_class = {"train": 64, "val": 50, "test": 100}
    rng = np.random.default_rng(seed)
    raw, targets = {}, {}
    for split, n in per_class.items():
        labels = np.repeat(np.arange(10), n)
        raw[split] = rng.standard_normal((len(labels), width)).astype(np.float32)
        targets[split] = labels

    def make_batch(noise: np.ndarray, labels: np.ndarray, augment: bool, rng: np.random.Generator):
        return (torch.from_numpy(noise.copy()), torch.from_numpy(labels.copy())), torch.from_numpy(labels.copy())

    return TaskData(name="digit requests", raw=raw, targets=targets, make_batch=make_batch, metric_name="digit_score")


def load_digit_images_for_training(size: int = 28) -> TaskData:
    """The digit images (1 channel, ``size`` x ``size``) a generative model learns from."""
    return load_digits_images((1, 1, size, size))
