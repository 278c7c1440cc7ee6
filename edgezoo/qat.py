"""Quantization-aware fine-tuning (``--qat``): the trained model learns to live with int8, and its
int8 files are its fake-quantized graph, exported as such.

Every convolution and linear layer computes in simulated int8 while fine-tuning: its weight
fake-quantized per output channel (symmetric int8, as the runtimes store weights) and its input
per tensor (asymmetric 8-bit over a running min/max, kept as a buffer, so the ranges travel with
the weights). The loss is distillation from the trained float model (the mean squared difference
of all outputs on the task's training inputs): no labels needed, the same for a classifier, a
regression or a policy's Q-values. The fine-tuned model, fake-quant and all, is then exported:
to ONNX as QuantizeLinear/DequantizeLinear pairs (the weights stored int8), which ONNX Runtime runs
as int8 and OpenVINO converts into its FakeQuantize int8. Measured on the DQN: removing the
fake-quant again and quantizing the fine-tuned float weights with the runtimes' own calibration
does not keep what was learned (simulated int8 500, the files 90-190), so the graph itself ships.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils import parametrize

from . import paths, progress
from .errors import BadInput
from .fileio import atomic_open, sha256_file, write_text_atomic
from .hostinfo import SATURATES, int8_sums_saturate
from .registry import ModelSpec
from .weights import read_state_dict

QUANTIZED = (nn.Conv1d, nn.Conv2d, nn.Linear)
RANGE = "qat_input_range"   # each quantized layer's input range [low, high]: a buffer, in the state_dict
VERSION = 2  # 2: the fake-quantized state_dict (weights as parametrizations, input ranges)


def weight_max() -> int:
    """The largest int8 weight QAT trains with: 127, or 64 where this host's uint8 x int8 kernels add
    pairs of products in 16 bits (x86 without VNNI, ``hostinfo.int8_sums_saturate``), as static int8
    keeps its weights to 7 bits there (ONNX Runtime's reduce_range: [-64, 64]). A fake-quant trained
    with 8-bit weights ships a file that such kernels saturate (the DQN's QAT file lost its policy on
    an AVX2 host); a converter child on the same host rebuilds the same grid."""
    return 64 if int8_sums_saturate() else 127


class WeightFakeQuant(nn.Module):
    """Per-output-channel symmetric int8 of a weight (scale max|w| / qmax, zero point 0, values in [-qmax, qmax])."""

    frozen: torch.Tensor | None = None   # the scales as constants, for export (freeze)

    def __init__(self, qmax: int = 127):
        super().__init__()
        self.qmax = int(qmax)

    def scales(self, w: torch.Tensor) -> torch.Tensor:
        return (w.detach().reshape(w.shape[0], -1).abs().amax(1) / self.qmax).clamp_min(1e-8).float()

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        scale = self.frozen if self.frozen is not None else self.scales(w)
        zero = torch.zeros(w.shape[0], dtype=torch.int32, device=w.device)
        # The grid's bounds stay int8's (ONNX's QuantizeLinear allows no other); the scale keeps
        # every weight within [-qmax, qmax].
        return torch.fake_quantize_per_channel_affine(w, scale, zero, 0, -128, 127)


def weight_grid(model: nn.Module) -> int:
    """The qmax a prepare()d model's weights are fake-quantized to."""
    grids = {m.qmax for m in model.modules() if isinstance(m, WeightFakeQuant)}
    if len(grids) != 1:
        raise ValueError(f"not a model prepare()d for QAT with one weight grid (found {sorted(grids)})")
    return grids.pop()


def freeze(model: nn.Module) -> nn.Module:
    """Each weight's scales as constants: an exported graph then quantizes a constant weight with
    constant scales (folded into int8 weights), instead of computing the scales at run time."""
    for module in model.modules():
        if parametrize.is_parametrized(module, "weight"):
            fq = module.parametrizations.weight[0]
            fq.frozen = fq.scales(module.parametrizations.weight.original)
    return model


def _input_fake_quant(module: nn.Module, args):
    """Forward pre-hook: the layer's input in asymmetric uint8 over the range in its buffer, which
    training updates (a running min/max) and eval reads; the range always holds 0."""
    x = args[0]
    if not x.is_floating_point():
        return None
    bounds = getattr(module, RANGE)
    if module.training:
        low, high = x.detach().min(), x.detach().max()
        with torch.no_grad():
            if bool(torch.isnan(bounds).any()):
                bounds.copy_(torch.stack([low, high]))
            else:
                bounds.lerp_(torch.stack([low, high]), 0.01)
    if bool(torch.isnan(bounds).any()):
        return None
    low, high = min(float(bounds[0]), 0.0), max(float(bounds[1]), 0.0)
    scale = max(high - low, 1e-8) / 255
    zero = int(round(-low / scale))
    return (torch.fake_quantize_per_tensor_affine(x, scale, zero, 0, 255), *args[1:])


def prepare(model: nn.Module, qmax: int | None = None) -> nn.Module:
    """Fake-quant on every convolution and linear layer, in place (the same structure every time,
    so a process that builds the model and calls this can load a fine-tuned state_dict); weights
    within [-qmax, qmax] (default ``weight_max()``, this host's)."""
    qmax = weight_max() if qmax is None else qmax
    for module in model.modules():
        if isinstance(module, QUANTIZED) and not parametrize.is_parametrized(module, "weight"):
            parametrize.register_parametrization(module, "weight", WeightFakeQuant(qmax))
            module.register_buffer(RANGE, torch.full((2,), float("nan")))
            module.register_forward_pre_hook(_input_fake_quant)
    return model


@dataclass
class QatResult:
    model: nn.Module          # fake-quantized, eval mode: what the int8 files are exported from
    epochs: int
    lr: float
    metric_before: float      # the float model's, held-out test split
    int8_simulated: float     # the fine-tuned model's, fake-quant on
    weights: Path             # the cache file (its state_dict, for prepare()d models)
    weight_bits: int = 8      # 7 where this host's int8 sums saturate (weight_max)


def check_qat(spec: ModelSpec, data, epochs: int | None, weights_sha256: str | None) -> None:
    if epochs is not None and epochs < 1:
        raise BadInput(f"--epochs {epochs}: quantization-aware fine-tuning needs at least 1 epoch")
    if data is None or data.size("train") == 0:
        mine = " (a model of your own: give --data with a target and --metric; it fine-tunes on the train split)" if spec.origin is not None else ""
        raise BadInput(f"--qat: {spec.name} has no training inputs to fine-tune on{mine}")
    if weights_sha256 is None:
        raise BadInput(f"--qat fine-tunes trained weights, and {spec.name} has none here: give --weights")


def default_epochs(spec: ModelSpec) -> int:
    """A tenth of the card's training epochs, at least 5."""
    return max(5, spec.recipe.epochs // 10)


def qat_model(spec: ModelSpec, net: nn.Module, data, weights_sha256: str, epochs: int | None = None) -> QatResult:
    """``net`` fine-tuned under simulated int8 by distillation from itself; cached by the starting
    weights' hash, the inputs and the epochs."""
    from .train import evaluate

    epochs = default_epochs(spec) if epochs is None else int(epochs)
    recipe = spec.recipe
    lr = (recipe.stages[-1].lr if recipe.stages else 1e-3) / 10
    batch = max(recipe.batch_size, 32)
    qmax = weight_max()
    bits = 8 if qmax == 127 else 7
    fields = {"base": weights_sha256, "inputs": [(i.name, i.shape[1:], i.dtype) for i in spec.inputs],
              "epochs": epochs, "lr": lr, "batch": batch, "version": VERSION}
    if qmax != 127:   # 8-bit entries keep their keys
        fields["weight_max"] = qmax
    key = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]
    cached = paths.home() / "qat" / f"{spec.name}-e{epochs}-{key}.safetensors"
    record = cached.with_suffix(".json")
    if cached.is_file() and record.is_file():
        model = prepare(copy.deepcopy(net), qmax)
        model.load_state_dict(read_state_dict(cached), strict=True)
        info = json.loads(record.read_text())
        return QatResult(model.eval(), epochs, lr, info["metric_before"], info["int8_simulated"], cached, bits)

    before = evaluate(net, data, "test")
    progress.info(f"{spec.name}: quantization-aware fine-tuning, {epochs} epochs distilled from the trained model{f', weights within 7 bits ({SATURATES})' if bits == 7 else ''} (once; cached in {cached.parent})")
    teacher = copy.deepcopy(net).eval()
    student = prepare(copy.deepcopy(net), qmax)
    _distill(student, teacher, data, epochs, lr, batch, recipe, spec.name)
    student.eval()
    simulated = evaluate(student, data, "test")
    from safetensors.torch import save

    with atomic_open(cached, "wb") as f:
        f.write(save({k: v.detach().contiguous() for k, v in student.state_dict().items()}))
    write_text_atomic(record, json.dumps({"model": spec.name, "epochs": epochs, "lr": lr, "weight_bits": bits, "metric_before": before,
                                          "int8_simulated": simulated, "sha256": sha256_file(cached)}, indent=1))
    return QatResult(student, epochs, lr, before, simulated, cached, bits)


def _distill(student: nn.Module, teacher: nn.Module, data, epochs: int, lr: float, batch: int, recipe, name: str) -> None:
    from .devices.runners import output_tuple
    from .train import _run_stage

    make_inputs, make_batch = data.make_inputs, data.make_batch

    def labelled(raw, targets, augment, rng):
        """The task's inputs, labelled with the float model's outputs."""
        inputs = make_batch(raw, targets, augment, rng)[0] if make_batch is not None else make_inputs(raw, augment, rng if augment else None)
        with torch.no_grad():
            return inputs, output_tuple(teacher(*inputs))

    def loss(outputs, wanted):
        return sum(nn.functional.mse_loss(o.float(), w.float()) for o, w in zip(output_tuple(outputs), wanted))

    with torch.no_grad():  # the input ranges from a first pass, before any step moves the weights
        student.train()
        for inputs, _ in data.batches("train", batch):
            student(*inputs)
            break
    _run_stage(student, dataclasses.replace(data, make_batch=labelled, loss=loss), epochs, lr,
               dataclasses.replace(recipe, batch_size=batch, weight_decay=0.0), f"qat {name}", None)


def export_qdq_onnx(model: nn.Module, example_inputs, input_names, output_names, path: Path) -> None:
    """The fake-quantized model as ONNX QuantizeLinear/DequantizeLinear pairs (TorchScript
    exporter: torch.export's ONNX translation has no fake-quantize op), then each weight's
    QuantizeLinear folded into an int8 initializer, so the file stores int8 weights."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    torch.onnx.export(freeze(model.eval()), tuple(example_inputs), str(path), dynamo=False, opset_version=18,
                      input_names=list(input_names), output_names=list(output_names))
    m = onnx.load(str(path))
    graph = m.graph
    inits = {i.name: i for i in graph.initializer}
    consts = {n.output[0]: n for n in graph.node if n.op_type == "Constant"}

    def value(name):
        if name in inits:
            return numpy_helper.to_array(inits[name])
        if name in consts:
            return numpy_helper.to_array(consts[name].attribute[0].t)
        return None

    keep = []
    for node in graph.node:
        if node.op_type == "QuantizeLinear" and value(node.input[0]) is not None and value(node.input[0]).dtype == np.float32:
            w, scale, zero = value(node.input[0]), value(node.input[1]), value(node.input[2])
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            shape = [1] * w.ndim
            if np.ndim(scale):
                shape[axis] = -1
            q = np.clip(np.round(w / scale.reshape(shape)) + zero.astype(np.int32).reshape(shape), np.iinfo(zero.dtype).min, np.iinfo(zero.dtype).max)
            graph.initializer.append(numpy_helper.from_array(q.astype(zero.dtype), node.output[0]))
            continue
        keep.append(node)
    del graph.node[:]
    graph.node.extend(keep)
    used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    alive = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(alive)
    onnx.checker.check_model(m)
    onnx.save(m, str(path))


def qat_graph(ctx) -> Path:
    """The fake-quantized model (export --qat) as a QDQ ONNX graph with int8 weights, made once
    per export and shared (OpenVINO converts from it), under the same lock as export.to_onnx.onnx_graph."""

    def make() -> Path:
        import fcntl
        import os

        path = ctx.workdir / "qat-graph.onnx"
        with open(ctx.workdir / "graph.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not path.is_file():
                if ctx.qat_model is None:
                    raise RuntimeError("int8 scheme qat needs the fine-tuned model: export with --qat")
                partial = ctx.workdir / "qat-graph.partial.onnx"
                from .quiet import quiet_native

                with quiet_native():
                    export_qdq_onnx(ctx.qat_model, ctx.example_inputs, ctx.input_names, ctx.output_names, partial)
                os.replace(partial, path)
        return path

    return ctx.once("qat-onnx", make)
