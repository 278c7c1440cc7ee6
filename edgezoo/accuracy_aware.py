"""Accuracy-aware int8 (``--max-drop``): when full static int8 loses more of the task metric than
allowed, keep the fewest layers in float that bring it back within the bound.

Each layer full int8 quantized is tried alone in float: int8 everywhere but that layer, measured
on the selection split (the validation split, or a closed loop's selection seeds: never the
held-out test split the artifact is then judged on). Layers are ranked by how much of the metric
each recovers; then the most recovering are kept float, one more at a time, until the selection
metric is within the bound (many layers: contiguous groups first, see keep_fewest_float). The
quantizing and the measuring are the caller's (a format's child process and its runner); this
module only decides.

For a top-1 accuracy, what int8 "loses" on the selection split is the share of predictions it
changes where that exceeds the net fall of the metric: int8 flips predictions both ways, and a
split where the flips cancel says little of the next one (measured on the 35%-pruned MobileNetV2:
no net loss on the 359 validation images, 1.67 points on the 360 held-out ones). The share bounds
the loss on any split where the file changes no larger share; how well one split's share foretells
another's depends on their size (the same model in ONNX Runtime with 4 layers kept float changed
none of the validation predictions and 5 of the 360 held-out ones).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .errors import BadInput


@dataclass
class Selection:
    """The selection split in the export's fixed batch, and torch's metric on it."""

    inputs: list[tuple[np.ndarray, ...]]
    targets: np.ndarray | None
    n_samples: int | None       # rows of the concatenated outputs that are samples (None: all)
    metric: float
    data: object
    source: str
    reference: np.ndarray | None = None  # torch's first output on it (rows kept), where the metric is scored on outputs


@dataclass(frozen=True)
class Score:
    """A trial on the selection split: its metric, and (top-1 metrics) the share of predictions it
    changed from torch's."""

    metric: float
    changed: float | None = None


def check_max_drop(max_drop: float | None, int8: bool) -> None:
    if max_drop is None:
        return
    if not int8:
        raise BadInput("--max-drop bounds what int8 may lose: add --int8")
    if not math.isfinite(max_drop) or max_drop < 0:
        raise BadInput(f"--max-drop {max_drop:g}: give how much of the task metric int8 may lose, in the metric's own units, as a number >= 0")


def selection(model, spec, data) -> Selection:
    """torch's outputs and metric on what layer choices are made on. Refused in one line for a
    model with no task data, or whose metric comes from a closed loop without selection inputs."""
    import torch

    from .check import fixed_batch
    from .devices.runners import output_tuple, torch_runner

    if data is None:
        mine = " (a model of your own: give --data with a target array, and --metric)" if spec.origin is not None else ""
        raise BadInput(f"--max-drop: {spec.name} has no task data to measure int8's loss on{mine}; or export it with --int8 alone")
    rollout = data.rollout
    if rollout is not None and rollout.sets_metric:
        if rollout.select is None:
            raise BadInput(f"--max-drop: {spec.name}'s {data.metric_name} comes from a closed loop ({rollout.name}) with no selection inputs "
                           "apart from the held-out ones; export it with --int8 alone")
        result = rollout.select(torch_runner(model))
        return Selection([], None, 0, float(result.value), data, f"{data.name} closed loop on selection seeds (not the held-out ones)")
    if not data.scored_by_outputs or data.size("val") == 0:
        raise BadInput(f"--max-drop: {spec.name}'s task has no validation split scored by outputs; export it with --int8 alone")
    batch = spec.inputs[0].shape[0]
    per_call = data.per_call(batch)
    inputs, targets, outputs = [], [], []
    with torch.inference_mode():
        for x, y in data.batches("val", per_call):
            x = fixed_batch(x, batch) if data.samples_per_call is None else x
            inputs.append(tuple(t.numpy() for t in x))
            targets.append(y.numpy())
            outputs.append(output_tuple(model(*x))[0].numpy())
    n = data.size("val")
    target = np.concatenate(targets)[:n]
    reference = np.concatenate(outputs)[:data.rows_kept(n)]
    metric = float(data.metric(reference, target))
    return Selection(inputs, target, data.rows_kept(n), metric, data, f"{data.name} validation split, {n} samples", reference)


def selection_score(runner, sel: Selection) -> Score:
    """An artifact's runner on the selection split: its task metric and, for a top-1 metric, the
    share of predictions it changed from torch's."""
    rollout = sel.data.rollout
    if rollout is not None and rollout.sets_metric:
        return Score(float(rollout.select(runner).value))
    got = np.concatenate([np.asarray(runner(x)[0]) for x in sel.inputs])[: sel.n_samples]
    changed = None if sel.reference is None else sel.data.measure.changed(got, sel.reference, sel.targets)
    return Score(float(sel.data.metric(got, sel.targets)), changed)


@dataclass
class Decision:
    kept_float: list[str]          # in the order they were kept (most recovering first)
    candidates: int                # layers the quantizer could keep float
    all_int8_metric: float | None  # on the selection split; None: full int8 could not be made or run
    metric: float | None           # with kept_float in float, on the selection split
    met: bool                      # what int8 loses on the selection split is within the bound
    trials: int
    all_int8_changed: float | None = None  # top-1 metrics: the share of selection predictions full int8 changed
    changed: float | None = None           # ... and the decided file


#: Up to this many layers, each is tried alone; past it, contiguous groups (in graph order) are.
MAX_UNITS = 24


def keep_fewest_float(trial: Callable[[tuple[str, ...]], Score | float | None], list_layers: Callable[[], Sequence[str]], sel: Selection,
                      max_drop: float, advance: Callable[[str], None] = lambda note: None) -> Decision:
    """``trial(keep)`` quantizes with ``keep`` in float and returns its selection Score (or just the
    metric; None when that file could not be made or run); ``list_layers()``, called after full
    int8's trial, names the layers that file quantized, by the names ``trial`` takes. The last
    ``trial`` call is always the one with the returned ``kept_float``: the caller keeps that call's
    file. What a trial loses is the metric's fall from torch's, or the share of predictions it
    changed where that is larger (a top-1 metric: see the module's note).

    Up to MAX_UNITS layers, each is tried alone in float, ranked by what int8 then loses, and the
    most recovering kept float one at a time until the bound holds. A model with more (a GPT's
    hundred-odd quantized nodes) would cost a trial per layer: its layers are tried in MAX_UNITS
    contiguous groups instead, the most recovering groups kept float until the bound holds, and
    then each layer of those groups is given back to int8, last-ranked first, where the bound still
    holds without it."""
    measure = sel.data.measure

    def scored(keep: tuple[str, ...]) -> Score | None:
        got = trial(keep)
        return got if got is None or isinstance(got, Score) else Score(float(got))

    def loses(score: Score | None) -> float:
        if score is None or not math.isfinite(score.metric):
            return math.inf
        return max(measure.worse_by(score.metric, sel.metric), score.changed or 0.0)

    def within(score: Score | None) -> bool:
        return loses(score) <= max_drop + 1e-9

    def decision(kept: list[str], candidates: int, metric: Score | None, met: bool) -> Decision:
        return Decision(kept, candidates, _value(full), _value(metric), met, trials, _changed(full), _changed(metric))

    full = scored(())
    trials = 1
    advance(f"all int8: {_say(full)} (torch {sel.metric:.4g})")
    if within(full):
        return decision([], 0, full, True)
    layers = list(list_layers())
    size = max(1, math.ceil(len(layers) / MAX_UNITS))
    units = [layers[i : i + size] for i in range(0, len(layers), size)]
    alone = []  # what int8 loses with only that unit float: the less, the more the unit recovers
    for i, unit in enumerate(units):
        alone.append(loses(scored(tuple(unit))))
        trials += 1
        advance(f"{'layer' if size == 1 else 'group'} {i + 1}/{len(units)} kept float alone")
    # Most recovering first; a tie keeps the graph's order (earlier layers feed more of the net).
    ranked = sorted(range(len(units)), key=lambda i: alone[i])
    kept: list[str] = []
    metric, last = full, ()
    for i in ranked:
        kept += units[i]
        metric, last = scored(tuple(kept)), tuple(kept)
        trials += 1
        advance(f"{len(kept)} kept float: {_say(metric)}")
        if within(metric):
            break
    else:
        return decision(kept, len(layers), metric, False)
    if size > 1:  # groups: give back to int8 each layer the bound does not need
        for layer in reversed(list(kept)):
            fewer = tuple(k for k in kept if k != layer)
            got, last = scored(fewer), fewer
            trials += 1
            if within(got):
                kept, metric = list(fewer), got
                advance(f"{layer} back to int8: {len(kept)} kept float, {_say(got)}")
        if last != tuple(kept):  # the caller keeps the last trial's file: make the decided one last
            metric = scored(tuple(kept))
            trials += 1
    return decision(kept, len(layers), metric, True)


def _value(score: Score | None) -> float | None:
    return None if score is None else score.metric


def _changed(score: Score | None) -> float | None:
    return None if score is None else score.changed


def _say(score: Score | None) -> str:
    if score is None:
        return "could not be made or run"
    return f"{score.metric:.4g}" + ("" if score.changed is None else f", {score.changed:.1%} of predictions changed")
