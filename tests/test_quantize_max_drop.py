"""Accuracy-aware int8 (--max-drop): the fewest layers kept float, chosen on the selection split, in
each runtime by its own means; the file then judged on the held-out split like any other. (Named to
run after test_matrix: the DQN's checkpoint trains in the background from the session's start.)"""

from __future__ import annotations

import numpy as np
import pytest

from edgezoo import zoo
from edgezoo.accuracy_aware import Selection, keep_fewest_float
from edgezoo.data.base import TaskData
from edgezoo.manifest import read_manifest
from edgezoo.metrics import METRICS


def _selection(metric: float) -> Selection:
    data = TaskData("synthetic", {}, {}, metric_name="accuracy")
    return Selection([], None, 0, metric, data, "synthetic")


def test_the_layers_that_recover_most_are_kept_float_until_the_bound_holds():
    # Accuracy 0.90 in float; each layer's quantization costs what is listed, and the costs add up.
    cost = {"a": 0.01, "b": 0.06, "c": 0.0, "d": 0.03}
    calls = []

    def trial(keep):
        calls.append(keep)
        return 0.90 - sum(c for name, c in cost.items() if name not in keep)

    decision = keep_fewest_float(trial, lambda: list(cost), _selection(0.90), max_drop=0.015)
    assert decision.kept_float == ["b", "d"]  # the two that recover most; a (0.01) alone is within the bound
    assert decision.met and decision.candidates == 4 and decision.trials == 1 + 4 + 2
    assert decision.all_int8_metric == pytest.approx(0.80) and decision.metric == pytest.approx(0.89)
    assert calls[-1] == ("b", "d")  # the caller keeps the last trial's file: it is the decision's


def test_full_int8_within_the_bound_keeps_nothing_float_and_lists_no_layers():
    listed = []
    decision = keep_fewest_float(lambda keep: 0.895, lambda: listed.append(1) or ["a"], _selection(0.90), max_drop=0.01)
    assert decision.kept_float == [] and decision.met and decision.trials == 1 and not listed


def test_a_trial_that_cannot_be_run_counts_as_losing_everything():
    # Full int8 crashes the runtime (None); keeping "x" float avoids the crash.
    decision = keep_fewest_float(lambda keep: 0.9 if "x" in keep else None, lambda: ["w", "x"], _selection(0.90), max_drop=0.0)
    assert decision.all_int8_metric is None and decision.kept_float == ["x"] and decision.met


def test_a_top1_metric_counts_the_predictions_int8_changed_not_their_net_effect():
    """Int8 that flips as many predictions right as wrong keeps the accuracy of the selection split
    and loses on another split: for a top-1 accuracy the share of changed predictions is the loss."""
    from edgezoo.accuracy_aware import Score, selection_score

    rng = np.random.default_rng(0)
    reference = rng.standard_normal((200, 10)).astype(np.float32)
    targets = reference.argmax(1).copy()
    targets[:20] = (targets[:20] + 1) % 10  # torch is wrong on 20: accuracy 0.90
    data = TaskData("synthetic", {}, {}, metric_name="accuracy")
    sel = Selection([(reference[i:i + 50],) for i in range(0, 200, 50)], targets, 200, 0.90, data, "synthetic", reference)

    def flipping(k):
        """Right on the first k torch got wrong, wrong on k it got right: the same accuracy."""
        out = reference.copy()
        out[np.arange(k), targets[:k]] = 100.0
        out[np.arange(20, 20 + k), (targets[20:20 + k] + 1) % 10] = 100.0
        return lambda x: [out[(x[0][:, None] == reference[None]).all(-1).argmax(1)]]  # each row's own output

    for k in (0, 2, 5):
        got = selection_score(flipping(k), sel)
        assert got.metric == pytest.approx(0.90) and got.changed == pytest.approx(2 * k / 200)

    # Each layer kept float halves the flips; full int8 changes 10% of predictions at no net loss.
    flips = {0: 0.10, 1: 0.05, 2: 0.01}
    decision = keep_fewest_float(lambda keep: Score(0.90, flips[len(keep)]), lambda: ["a", "b", "c"], sel, max_drop=0.02)
    assert decision.all_int8_metric == pytest.approx(0.90) and decision.all_int8_changed == pytest.approx(0.10)
    assert len(decision.kept_float) == 2 and decision.changed == pytest.approx(0.01) and decision.met
    # A metric with no top-1 bound (an error) is judged by its fall alone.
    assert METRICS["rmse"].changed(reference, reference * 2, targets) is None


@pytest.mark.trains("dqn")
def test_max_drop_meets_the_bound_in_every_runtime_on_the_dqn(tmp_path):
    """Measured: full static int8 of the DQN's policy loses 200-440 of its 500 return on the
    selection seeds (the dueling heads' output, two Q-values within 1%, does not survive 8-bit
    activations); with --max-drop at the card's bound each runtime keeps a few layers float."""
    from edgezoo.pipeline import export

    spec = zoo.get("dqn").small_variant()
    bound = spec.tolerance.int8_metric_drop
    result = export(spec, int8=True, max_drop=bound, out=tmp_path / "out", calib_samples=64)
    manifest = read_manifest(tmp_path / "out" / "manifest.json")
    assert manifest.int8_scheme == "static"
    for row in (a for a in manifest.artifacts if a.precision == "int8"):
        aa = row.accuracy_aware
        assert row.ok, row.error
        assert aa is not None and aa.met and aa.max_drop == bound and aa.torch_metric == 500
        assert manifest.reference.metric - row.metric <= bound  # judged on the held-out seeds too
        if aa.all_int8_metric is not None and 500 - aa.all_int8_metric <= bound:
            assert aa.kept_float == []
            continue
        assert 0 < len(aa.kept_float) <= aa.candidates and len(set(aa.kept_float)) == len(aa.kept_float)
        assert aa.trials == 1 + aa.candidates + len(aa.kept_float)
        assert 500 - aa.metric <= bound
        assert aa.all_int8_latency_ms is not None and row.latency_ms is not None
        assert str(len(aa.kept_float)) in row.scheme  # the quantizer said what it left float
    assert result.ok


def test_many_layers_are_ranked_in_groups_then_given_back_to_int8_one_by_one():
    # 100 layers; only "L37" and "L80" cost anything. Groups of 5 are ranked, the two costly groups
    # kept float, then every layer the bound does not need goes back to int8.
    from edgezoo.accuracy_aware import MAX_UNITS

    layers = [f"L{i}" for i in range(100)]
    cost = {"L37": 0.05, "L80": 0.02}
    calls = []

    def trial(keep):
        calls.append(keep)
        return 0.90 - sum(c for name, c in cost.items() if name not in keep)

    decision = keep_fewest_float(trial, lambda: layers, _selection(0.90), max_drop=0.001)
    assert sorted(decision.kept_float) == ["L37", "L80"]
    assert decision.met and decision.metric == pytest.approx(0.90)
    assert decision.trials < len(layers) and decision.trials == len(calls)
    groups = calls[1:21]  # 100 layers in groups of ceil(100 / MAX_UNITS) = 5: 20 group trials after full int8
    assert MAX_UNITS == 24 and all(len(g) == 5 for g in groups) and len({l for g in groups for l in g}) == 100
    assert set(calls[-1]) == set(decision.kept_float)
