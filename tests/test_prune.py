"""Structured pruning (edgezoo/prune.py): whole channels go, the smaller model is rebuilt from data
(no pickle), fine-tuned, and exported and checked like any other; what cannot be pruned is refused."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from edgezoo import zoo
from edgezoo.architecture import apply_architecture, architecture_of
from edgezoo.manifest import read_manifest
from edgezoo.prune import ROUND_TO, prune_structure, pruned_model
from edgezoo.stats import count_macs, count_params


def _channels(model: nn.Module) -> dict[str, int]:
    return {n: m.out_channels for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}


@pytest.mark.parametrize("name", ["mobilenet", "resnet", "alexnet", "mobilenet_v3_small", "cnn", "shufflenet"])
def test_channels_really_go_and_the_architecture_rebuilds_the_same_model(name):
    spec = zoo.get(name).small_variant()
    x = spec.example_inputs()
    model = spec.build().eval()
    macs, params = count_macs(model, x), count_params(model)
    prune_structure(model, x, 0.3, name)
    assert count_macs(model, x) < 0.9 * macs and count_params(model) < params
    # Channel counts a runtime's SIMD kernels tile by (depthwise groups follow their channels).
    before = _channels(spec.build())
    changed = {n: c for n, c in _channels(model).items() if c != before[n]}
    assert changed and all(c % ROUND_TO == 0 for c in changed.values()), changed
    # The architecture as data rebuilds a model the pruned weights load into strictly: same outputs.
    arch = json.loads(json.dumps(architecture_of(model, spec.build())))
    rebuilt = apply_architecture(spec.build(), arch, name)
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    with torch.no_grad():
        assert torch.equal(rebuilt.eval()(*x), model(*x))


def test_export_prune_checks_the_smaller_model_and_reports_what_it_cost(cli, tmp_path, zoo_export):
    spec, _ = zoo_export("cnn")  # the trained small cnn, cached this session
    from edgezoo.pipeline import export

    result = export(spec, int8=True, prune=0.4, finetune_epochs=2, out=tmp_path / "out", formats="onnx,tflite,openvino", calib_samples=32)
    m = read_manifest(result.manifest_path)
    assert m.pruning is not None and m.pruning.ratio == 0.4 and m.pruning.finetune_epochs == 2
    assert m.pruning.macs_after < 0.75 * m.pruning.macs_before and m.pruning.params_after < m.pruning.params_before
    assert m.pruning.metric_after == pytest.approx(m.reference.metric, abs=0.003)  # the same split, batched differently
    assert all(a.ok for a in m.artifacts), [(a.format, a.precision, a.error) for a in m.artifacts]
    # The files hold the narrower layers.
    graph = onnx.load(str(result.out_dir / "cnn.onnx")).graph
    conv_out = sorted(int(np.prod(t.dims[:1])) for t in graph.initializer if len(t.dims) == 4)
    unpruned = sorted(c.out_channels for c in spec.build().modules() if isinstance(c, nn.Conv2d))
    assert conv_out != unpruned and sum(conv_out) < sum(unpruned)
    # The manifest rebuilds the pruned model (architecture as data, safetensors weights): bench's torch eager.
    assert m.source.architecture and m.source.weights.endswith(".safetensors")
    run = cli("bench", result.out_dir, "--threads", "1", "--runtimes", "torch,onnxruntime", "--rounds", "1", "--seconds", "0.2", "--no-plots")
    assert run.returncode == 0, run.stdout + run.stderr
    # A second call loads the cached pruned checkpoint instead of pruning again.
    again = pruned_model(spec, 0.4, 2)
    assert again.weights == pruned_model(spec, 0.4, 2).weights and again.architecture == m.source.architecture


@pytest.mark.parametrize("args,needles", [
    (["--model", "cnn", "--prune", "0"], ["--prune 0.0", "between 0 and 1"]),
    (["--model", "cnn", "--prune", "1.5"], ["--prune 1.5", "between 0 and 1"]),
    (["--model", "lstm", "--prune", "0.3"], ["lstm", "export it unpruned"]),
    (["--model", "gpt", "--prune", "0.3"], ["gpt", "export it unpruned"]),
    (["--model", "dqn", "--prune", "0.3"], ["dqn", "own loop"]),
    (["--model", "cnn", "--prune", "0.3", "--finetune-epochs", "-1"], ["--finetune-epochs -1"]),
])
def test_what_cannot_be_pruned_is_refused_in_one_line_before_anything_is_written(cli, tmp_path, args, needles):
    out = tmp_path / "out"
    run = cli("export", *args, "--out", out)
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    lines = [l for l in run.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and all(n in lines[0] for n in needles), run.stderr
    assert not out.exists()


def test_prune_with_weights_is_refused(cli, tmp_path):
    weights = tmp_path / "w.pt"
    torch.save(zoo.get("cnn").build().state_dict(), weights)
    run = cli("export", "--model", "cnn", "--prune", "0.3", "--weights", weights, "--out", tmp_path / "out")
    assert run.returncode == 2 and "--prune with --weights" in run.stderr and not (tmp_path / "out").exists()


def test_an_architecture_for_another_model_is_refused(tmp_path):
    from edgezoo.errors import BadInput

    spec = zoo.get("cnn")
    with pytest.raises(BadInput, match="made for another model"):
        apply_architecture(spec.build(), {"features.99": {"type": "Conv2d", "in_channels": 8, "out_channels": 8, "groups": 1}}, "cnn")
    with pytest.raises(BadInput, match="positive integer"):
        name = next(n for n, m in spec.build().named_modules() if isinstance(m, nn.Conv2d))
        apply_architecture(spec.build(), {name: {"type": "Conv2d", "in_channels": 1, "out_channels": -3, "groups": 1}}, "cnn")
    assert dataclasses.replace(spec, architecture=None).build() is not None


def test_fine_tuning_retraces_the_cards_stages_with_the_epochs_spread_over_them():
    from edgezoo.prune import default_finetune_epochs, finetune_stages

    spec = zoo.get("mobilenet")  # three stages: 12 epochs at 64x64, 2 at 160x160, 2 at 224x224 with early blocks frozen
    card = spec.recipe.stages
    assert finetune_stages(spec, default_finetune_epochs(spec)) == card
    half = finetune_stages(spec, 8)
    assert [s.epochs for s in half] == [6, 1, 1] and [(s.lr, s.size, s.train_from) for s in half] == [(s.lr, s.size, s.train_from) for s in card]
    assert [s.epochs for s in finetune_stages(spec, 5)] == [3, 1, 1]
    # Fewer epochs than stages: the last stages (the export's size), one epoch each.
    assert finetune_stages(spec, 2) == tuple(dataclasses.replace(s, epochs=1) for s in card[1:])
    for epochs in range(1, 40):
        assert sum(s.epochs for s in finetune_stages(spec, epochs)) == epochs
    assert finetune_stages(zoo.get("cnn"), 3) == (dataclasses.replace(zoo.get("cnn").recipe.stages[0], epochs=3),)


def test_batch_norm_statistics_are_re_estimated_on_the_training_split():
    from edgezoo.prune import recalibrate_batch_norm
    from edgezoo.train import _fast_layout

    spec = zoo.get("resnet").small_variant()
    data = spec.load_data(spec.inputs[0].shape)
    model = spec.build()
    norm = next(m for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    norm.running_mean.fill_(5.0), norm.running_var.fill_(0.01)  # statistics that fit nothing
    momentum = norm.momentum
    recalibrate_batch_norm(model, data)
    # What the layer before the norm gives on the whole training split: its per-channel mean and variance.
    seen = []
    handle = norm.register_forward_hook(lambda m, inputs, out: seen.append(inputs[0].detach()))
    with torch.no_grad():
        for inputs, _ in data.batches("train", 64):
            model(*_fast_layout(inputs))
    handle.remove()
    x = torch.cat([t.transpose(0, 1).reshape(t.shape[1], -1) for t in seen], 1)
    assert torch.allclose(norm.running_mean, x.mean(1), atol=1e-4)
    assert torch.allclose(norm.running_var, x.var(1), rtol=0.05)  # batch norm keeps the mean of each batch's (unbiased) variance
    assert norm.momentum == momentum and not model.training
