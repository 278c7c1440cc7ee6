"""statsmodels' yearly sunspot numbers (1700-2008, shipped with the package) as a forecasting task:
the last ``window`` years in, next year's number out. Splits are chronological (no future leaks
into training); the baseline is persistence (next year = this year)."""

from __future__ import annotations

import numpy as np
import torch

from .base import TaskData, regression_loss


def load_sunspots(input_shape: tuple[int, ...]) -> TaskData:
    import statsmodels.api as sm

    series = sm.datasets.sunspots.load_pandas().data["SUNACTIVITY"].to_numpy(np.float32)
    window = input_shape[1]
    windows = np.stack([series[i : i + window] for i in range(len(series) - window)])
    targets = series[window:]
    n = len(targets)
    cut = {"train": slice(0, int(0.7 * n)), "val": slice(int(0.7 * n), int(0.85 * n)), "test": slice(int(0.85 * n), n)}

    def make_inputs(raw: np.ndarray, augment: bool, rng: np.random.Generator | None) -> tuple[torch.Tensor, ...]:
        x = torch.from_numpy(raw).unsqueeze(-1)
        if augment:  # small multiplicative jitter: the counts are noisy observations
            x = x * torch.from_numpy(rng.normal(1.0, 0.02, (len(raw), 1, 1)).astype(np.float32))
        return (x,)

    test_windows, test_targets = windows[cut["test"]], targets[cut["test"]]
    persistence = float(np.sqrt(np.mean((test_windows[:, -1].astype(np.float64) - test_targets) ** 2)))
    return TaskData(
        name="sunspots",
        raw={k: windows[s] for k, s in cut.items()},
        targets={k: targets[s] for k, s in cut.items()},
        make_inputs=make_inputs,
        metric_name="rmse",
        loss=regression_loss,
        baseline=("persistence RMSE", persistence),
    )
