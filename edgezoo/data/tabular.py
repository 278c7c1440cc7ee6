"""scikit-learn's shipped tables (wine) as standardized feature vectors."""

from __future__ import annotations

import numpy as np
import torch

from .base import TaskData, split_indices


def load_wine_features(input_shape: tuple[int, ...], seed: int = 1234) -> TaskData:
    return _load("wine", seed)


def _load(name: str, seed: int) -> TaskData:
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")()
    x = bunch.data.astype(np.float32)
    y = bunch.target.astype(np.int64)
    idx = split_indices(len(y), seed)
    # Standardize with training statistics only: nothing of the test split leaks into the model.
    mean, std = x[idx["train"]].mean(0), x[idx["train"]].std(0) + 1e-6
    x = (x - mean) / std

    def make_inputs(raw: np.ndarray, augment: bool, rng: np.random.Generator | None) -> tuple[torch.Tensor, ...]:
        batch = torch.from_numpy(raw)
        if augment:
            batch = batch + torch.from_numpy(rng.normal(0, 0.05, raw.shape).astype(np.float32))
        return (batch,)

    return TaskData(name=name, raw={k: x[v] for k, v in idx.items()}, targets={k: y[v] for k, v in idx.items()}, make_inputs=make_inputs,
                    labels=tuple(str(n) for n in bunch.target_names))
