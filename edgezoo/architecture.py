"""A pruned architecture as data: the shape-defining arguments of each module whose shape differs
from the model its builder makes (channel counts, features, groups), and how to apply them to a
freshly built model. A leaf: it imports torch only, so the registry, the converters' children and
bench's children can all rebuild a pruned model without importing the pruning machinery."""

from __future__ import annotations

from torch import nn

from .errors import BadInput

# The shape-defining constructor arguments of each module type an architecture records.
SHAPES = {
    nn.Conv1d: ("in_channels", "out_channels", "groups"),
    nn.Conv2d: ("in_channels", "out_channels", "groups"),
    nn.ConvTranspose2d: ("in_channels", "out_channels", "groups"),
    nn.BatchNorm1d: ("num_features",),
    nn.BatchNorm2d: ("num_features",),
    nn.Linear: ("in_features", "out_features"),
}


def architecture_of(model: nn.Module, base: nn.Module) -> dict:
    """{module name: {"type", shape arguments}} for each module of ``model`` whose shape differs
    from the same-named module of ``base`` (the builder's unpruned model)."""
    base_modules = dict(base.named_modules())
    out = {}
    for name, module in model.named_modules():
        fields = SHAPES.get(type(module))
        if fields is None or name not in base_modules:
            continue
        shape = {f: getattr(module, f) for f in fields}
        if {f: getattr(base_modules[name], f) for f in fields} != shape:
            out[name] = {"type": type(module).__name__, **shape}
    return out


def apply_architecture(model: nn.Module, architecture: dict, what: str) -> nn.Module:
    """``model`` (as its builder made it) with each recorded module replaced by an untrained one of
    the recorded shape; load the pruned weights into it afterwards."""
    modules = dict(model.named_modules())
    for name, shape in architecture.items():
        old = modules.get(name)
        if old is None or not isinstance(shape, dict) or type(old).__name__ != shape.get("type") or type(old) not in SHAPES:
            raise BadInput(f"pruned architecture names {name!r} ({shape.get('type') if isinstance(shape, dict) else shape}), which {what} "
                           f"does not have: it was made for another model")
        args = {k: shape.get(k) for k in SHAPES[type(old)]}
        if not all(isinstance(v, int) and v > 0 for v in args.values()):
            raise BadInput(f"pruned architecture of {what}: {name!r} has {args}; every count must be a positive integer")
        parent, _, child = name.rpartition(".")
        setattr(modules[parent] if parent else model, child, _resized(old, args))
    return model


def _resized(module: nn.Module, shape: dict) -> nn.Module:
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d)):
        extra = {"output_padding": module.output_padding} if isinstance(module, nn.ConvTranspose2d) else {}
        return type(module)(shape["in_channels"], shape["out_channels"], module.kernel_size, module.stride, module.padding, **extra,
                            groups=shape["groups"], bias=module.bias is not None, dilation=module.dilation, padding_mode=module.padding_mode)
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return type(module)(shape["num_features"], module.eps, module.momentum, module.affine, module.track_running_stats)
    return nn.Linear(shape["in_features"], shape["out_features"], bias=module.bias is not None)
