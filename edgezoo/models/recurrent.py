"""Recurrent forecasters on yearly sunspot numbers: an Elman RNN and a 2-layer LSTM.

Both take raw sunspot numbers (batch, years, 1) and return next year's number: the scaling lives
inside the model, so a deployed file needs no preprocessing code beside it.
"""

from __future__ import annotations

import torch
from torch import nn

from ..data.sunspots import load_sunspots
from ..registry import InputSpec, ModelSpec, Stage, Tolerance, TrainRecipe, register

SCALE = 100.0  # sunspot numbers run 0-250


class UnrolledLSTM(nn.Module):
    """nn.LSTM's parameters (``weight_ih_l0``, ``bias_hh_l1``, ... so its state_dict loads), with
    the gates written out as matmuls over a fixed number of steps. Exporters otherwise emit one fused
    LSTM op, whose weights OpenVINO's weight compression leaves in float (measured: 0.3% of the
    constants int8); written out, every runtime sees matmuls it quantizes."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, batch_first: bool = True):
        super().__init__()
        assert batch_first
        self.hidden_size, self.num_layers = hidden_size, num_layers
        for layer in range(num_layers):
            fan_in = input_size if layer == 0 else hidden_size
            bound = hidden_size ** -0.5  # nn.LSTM's initialisation
            for name, shape in (("weight_ih", (4 * hidden_size, fan_in)), ("weight_hh", (4 * hidden_size, hidden_size)),
                                ("bias_ih", (4 * hidden_size,)), ("bias_hh", (4 * hidden_size,))):
                self.register_parameter(f"{name}_l{layer}", nn.Parameter(torch.empty(shape).uniform_(-bound, bound)))

    def forward(self, x: torch.Tensor):
        for layer in range(self.num_layers):
            w_ih, w_hh = getattr(self, f"weight_ih_l{layer}"), getattr(self, f"weight_hh_l{layer}")
            bias = getattr(self, f"bias_ih_l{layer}") + getattr(self, f"bias_hh_l{layer}")
            inputs = x @ w_ih.T + bias                       # all time steps at once
            h = x.new_zeros(x.shape[0], self.hidden_size)
            c = h
            outputs = []
            for t in range(x.shape[1]):
                i, f, g, o = (inputs[:, t] + h @ w_hh.T).chunk(4, 1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
                outputs.append(h)
            x = torch.stack(outputs, 1)
        return x, None


class Forecaster(nn.Module):
    def __init__(self, cell: str = "lstm", hidden: int = 64, layers: int = 2):
        super().__init__()
        kind = {"rnn": nn.RNN, "lstm": UnrolledLSTM}[cell]
        self.rnn = kind(1, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, years: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(years / SCALE)
        # Predict the change from the last year: persistence is the starting point, not the goal.
        return years[:, -1, :] + self.head(out[:, -1, :]) * SCALE


def _card(name: str, cell: str, layers: int, description: str, recipe: TrainRecipe, small: dict) -> ModelSpec:
    return ModelSpec(
        name=name,
        task="time-series forecasting",
        dataset="sunspots (statsmodels), yearly 1700-2008, 24-year windows, chronological splits",
        description=description,
        builder=Forecaster,
        build_kwargs={"cell": cell, "hidden": 64, "layers": layers},
        inputs=(InputSpec("years", (1, 24, 1), value_range=(0.0, 200.0)),),
        load_data=load_sunspots,
        metric_name="rmse",
        baseline_margin=0.10,
        int8_scheme="weights",
        tolerance=Tolerance(int8_metric_drop=1.0),
        recipe=recipe,
        small=small,
    )


# 199 training windows: noisy to fit. LSTM at 150 epochs, batch 16 scored 28.0 (misses the bar);
# 300 epochs scored 17.7 (hidden 64) and 25.0 (hidden 32). Batch 32 (half the steps) scored 28.3
# at hidden 64, missing the bar 27.1: the full recipe keeps batch 16.
# The tests' LSTM is one layer of 64: two layers of 32 (the previous small variant) scored 25.0,
# 21.3 and 28.7 over training seeds 0-2 (seed 2 misses the bar), one layer of 64 24.7, 24.0, 21.3
# (seeds 3-4: 23.2, 20.7) in half the time. Weight decay 1e-4 changed nothing.
register(_card("rnn", "rnn", 1, "Elman RNN (tanh), 64 hidden", TrainRecipe(stages=(Stage(150, 3e-3),), batch_size=16, weight_decay=1e-4),
               small={"build_kwargs": {"hidden": 32}}))
register(_card("lstm", "lstm", 2, "2-layer LSTM, 64 hidden", TrainRecipe(stages=(Stage(300, 3e-3),), batch_size=16),
               small={"build_kwargs": {"layers": 1}, "threads": 1}))
