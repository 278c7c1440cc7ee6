"""Structured pruning: whole channels removed, so the model is really smaller and faster in every
runtime (not weights zeroed in a model of the same shape).

Channels go by torch-pruning's dependency graph (a convolution's output channels with the batch
norm, the depthwise convolution and the residual additions and concatenations that share them),
ranked by the L2 norm of each group's weights, with the kept counts rounded to multiples of 8 (what
the runtimes' SIMD kernels tile by). A model whose graph torch-pruning cannot follow may prune
itself: a ``structured_prune(ratio, round_to)`` method (ShuffleNetV2's channel shuffle is one such
graph). Then the pruned model is fine-tuned with the zoo's training loop and cached.

A pruned checkpoint loads without unpickling anything: the weights in safetensors, the pruned
architecture as data (the shape-defining arguments of each module whose shape changed), which
rebuilds the model from its card: build, replace those modules by ones of the recorded shapes,
load the weights strictly.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import torch
from torch import nn

from . import paths, progress
from .architecture import architecture_of
from .errors import BadInput, one_line
from .fileio import atomic_open, sha256_file, write_text_atomic
from .registry import ModelSpec, Stage
from .weights import read_state_dict

# Kept channel counts are rounded down to multiples of 16 (a layer that would keep fewer keeps all
# its channels): ONNX Runtime's fp32 convolutions on AVX-512 compute in blocks of 16 channels (8 on
# AVX2, 4 on NEON), so a count of 8, 24 or 72 is padded up and its pruning buys nothing there.
# Measured on MobileNetV2 at 25% on an AMD EPYC with AVX-512 (the same structure, untrained weights):
# multiples of 8 removed 43% of the MACs and ran 1.32x faster in fp32 and 1.34x in int8; multiples
# of 16 removed 47% and ran 1.91x and 1.53x.
ROUND_TO = 16


@dataclasses.dataclass
class PruneResult:
    model: nn.Module
    ratio: float
    architecture: dict           # {module name: {type, shape arguments}}
    macs: tuple[int, int]        # before, after (at the card's input shape)
    params: tuple[int, int]
    metric: tuple[float, float]  # the held-out test metric before pruning, after fine-tuning
    finetune_epochs: int
    weights: Path                # the cached safetensors file


def check_ratio(ratio: float) -> float:
    if not 0 < ratio < 1:
        raise BadInput(f"--prune {ratio}: pass the fraction of channels to remove, between 0 and 1 (e.g. 0.3)")
    return float(ratio)


def check_prunable(spec: ModelSpec, ratio: float, finetune_epochs: int | None, weights) -> None:
    """What can be refused before anything is trained or written."""
    check_ratio(ratio)
    if finetune_epochs is not None and finetune_epochs < 0:
        raise BadInput(f"--finetune-epochs {finetune_epochs}: pass 0 (no fine-tuning) or more")
    if weights is not None:
        raise BadInput(f"--prune with --weights {weights}: pruning starts from the zoo's trained checkpoint and caches its own; "
                       f"drop --weights (or export a pruned checkpoint's model without --prune)")
    if spec.origin is not None:
        raise BadInput(f"--prune: {spec.origin} is a user model; pruning is for the zoo's convolutional models so far")
    if spec.trainer is not None:
        raise BadInput(f"--prune: {spec.name} trains with its own loop ({spec.trainer.__name__}), which pruning's fine-tuning does not drive; export it unpruned")
    model = spec.build()
    if not any(isinstance(m, (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d)) for m in model.modules()):
        raise BadInput(f"--prune: {spec.name} has no convolution to remove channels from (structured pruning is for convolutional models); export it unpruned")
    if any(isinstance(m, (nn.RNNBase, nn.Embedding, nn.MultiheadAttention)) for m in model.modules()):
        raise BadInput(f"--prune: {spec.name} has recurrent, embedding or attention layers, which structured pruning leaves alone; export it unpruned")


def prune_structure(model: nn.Module, example_inputs: tuple[torch.Tensor, ...], ratio: float, name: str) -> nn.Module:
    """Removes ``ratio`` of the prunable channels of ``model`` in place (no fine-tuning)."""
    model.eval()
    own = getattr(model, "structured_prune", None)
    if callable(own):
        own(ratio, ROUND_TO)
        return model
    import torch_pruning as tp

    # The layers that make the model's outputs keep them (the classes); embeddings, recurrent and
    # attention layers are left alone.
    with torch.no_grad():
        outputs = model(*example_inputs)
    n_out = (outputs[0] if isinstance(outputs, (tuple, list)) else outputs).shape[1]
    heads = [m for m in model.modules() if isinstance(m, nn.Linear) and m.out_features == n_out]
    heads += [m for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d)) and m.out_channels == n_out and m.groups == 1]
    heads += [m for m in model.modules() if isinstance(m, (nn.Embedding, nn.RNNBase, nn.MultiheadAttention))]
    try:
        pruner = tp.pruner.MetaPruner(model, example_inputs, importance=tp.importance.GroupMagnitudeImportance(p=2), pruning_ratio=ratio,
                                      ignored_layers=heads, round_to=ROUND_TO)
        pruner.step()
    except BadInput:
        raise
    except Exception as exc:
        raise BadInput(f"--prune: torch-pruning cannot follow {name}'s graph ({type(exc).__name__}: {one_line(exc)}); export it unpruned") from None
    return model


def cache_paths(spec: ModelSpec, base_checkpoint: Path, ratio: float, epochs: int) -> tuple[Path, Path]:
    key = hashlib.sha256(json.dumps({"base": sha256_file(base_checkpoint), "ratio": ratio, "epochs": epochs, "round_to": ROUND_TO, "version": 2},
                                    sort_keys=True).encode()).hexdigest()[:12]
    weights = paths.home() / "pruned" / f"{spec.name}-p{round(ratio * 100)}-{key}.safetensors"
    return weights, weights.with_suffix(".json")


def default_finetune_epochs(spec: ModelSpec) -> int:
    """The card's own training epochs: the pruned model is trained again with its recipe."""
    return sum(s.epochs for s in spec.recipe.stages)


def finetune_stages(spec: ModelSpec, epochs: int) -> tuple[Stage, ...]:
    """The card's stages (input sizes, learning rates, frozen prefixes) with ``epochs`` spread over
    them in proportion, at least one each; fewer epochs than stages: the last ones (the export's
    size), one epoch each.

    Why the card's stages (measured on a 2-core AVX2 AMD EPYC, MobileNetV2 at 35%, unpruned test
    accuracy 0.958): the previous fine-tuning, a quarter of the card's epochs all at 224x224 with
    everything trained at a third of the last stage's learning rate, scored 0.88-0.90, with or
    without distillation from the unpruned model (the Intel host's 0.964 was luck). The card's
    stages at its learning rates (most epochs at 64x64, the export size last with the early blocks
    frozen), the batch norms re-estimated first: half its epochs 0.958 / 0.933 / 0.939 over three
    shuffles; all of them 0.983 / 0.964 over two, in under 5 minutes on 2 cores."""
    stages = spec.recipe.stages
    if epochs < len(stages):
        return tuple(dataclasses.replace(s, epochs=1) for s in stages[len(stages) - epochs:])
    total = sum(s.epochs for s in stages)
    counts = [max(1, round(s.epochs * epochs / total)) for s in stages]
    counts[counts.index(max(counts))] += epochs - sum(counts)  # the longest stage takes the rounding
    return tuple(dataclasses.replace(s, epochs=n) for s, n in zip(stages, counts))


def recalibrate_batch_norm(model: nn.Module, data) -> None:
    """Re-estimates every batch norm's running statistics on the training split (no gradient, no
    augmentation): removing channels changes what the following layers see, and the statistics
    the unpruned model kept no longer fit (MobileNetV2 at 35%: test accuracy 0.11 before, 0.20
    after, on the way to fine-tuning)."""
    from .train import _fast_layout

    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the whole split
    model.train()
    with torch.no_grad():
        for inputs, _ in data.batches("train", 64):
            model(*_fast_layout(inputs))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    model.eval()


def pruned_model(spec: ModelSpec, ratio: float, finetune_epochs: int | None = None) -> PruneResult:
    """The card's trained model with ``ratio`` of its channels removed and fine-tuned (cached)."""
    from safetensors.torch import save

    from .stats import count_macs, count_params
    from .train import evaluate, run_stages, trained_model

    check_prunable(spec, ratio, finetune_epochs, None)
    epochs = default_finetune_epochs(spec) if finetune_epochs is None else int(finetune_epochs)
    base, checkpoint = trained_model(spec)
    weights, record = cache_paths(spec, checkpoint, ratio, epochs)
    example = spec.example_inputs()
    if weights.is_file() and record.is_file():
        info = json.loads(record.read_text())
        model = dataclasses.replace(spec, architecture=info["architecture"]).build()
        model.load_state_dict(read_state_dict(weights), strict=True)
        return PruneResult(model.eval(), ratio, info["architecture"], tuple(info["macs"]), tuple(info["params"]), tuple(info["metric"]), epochs, weights)

    data = spec.load_data(spec.inputs[0].shape)
    before = evaluate(base, data, "test")
    macs0, params0 = count_macs(base, example), count_params(base)
    progress.info(f"{spec.name}: pruning {ratio:.0%} of the channels, then fine-tuning {epochs} epochs (once; cached in {weights.parent})")
    pristine = spec.build()
    model = prune_structure(base, example, ratio, spec.name)
    model = model.to(memory_format=torch.channels_last)
    recalibrate_batch_norm(model, data)
    run_stages(model, spec, finetune_stages(spec, epochs) if epochs else (), f"fine-tune {spec.name} pruned {ratio:.0%}")
    model = model.to(memory_format=torch.contiguous_format)
    model.eval()
    after = evaluate(model, data, "test")
    arch = architecture_of(model, pristine)
    macs1, params1 = count_macs(model, example), count_params(model)
    with atomic_open(weights, "wb") as f:
        f.write(save({k: v.contiguous() for k, v in model.state_dict().items()}))
    write_text_atomic(record, json.dumps({"model": spec.name, "ratio": ratio, "finetune_epochs": epochs, "architecture": arch, "macs": [macs0, macs1],
                                          "params": [params0, params1], "metric": [before, after], "base_checkpoint": str(checkpoint),
                                          "sha256": sha256_file(weights)}, indent=1))
    return PruneResult(model, ratio, arch, (macs0, macs1), (params0, params1), (before, after), epochs, weights)
