"""Typed JSON files: dataclasses read back from parsed JSON with their kinds checked, and the JSON
Schema (draft 2020-12) made from the same dataclasses. The manifest and bench.json are written
this way. Imports no torch."""

from __future__ import annotations

import dataclasses
import types
import typing


def build(tp, value):
    """``value`` (parsed JSON) as type ``tp``, checking kinds on the way; raises TypeError,
    ValueError or KeyError naming what does not fit."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                return build(option, value)
            except (TypeError, ValueError, KeyError) as exc:
                errors.append(str(exc))
        raise TypeError("; ".join(errors))
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise TypeError(f"{tp.__name__} must be an object, got {type(value).__name__}")
        hints = typing.get_type_hints(tp)
        unknown = set(value) - set(hints)
        if unknown:
            raise ValueError(f"{tp.__name__} has unknown fields {sorted(unknown)}")
        missing = [f.name for f in dataclasses.fields(tp)
                   if f.name not in value and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        if missing:
            raise KeyError(f"{tp.__name__} lacks {missing}")
        return tp(**{k: build(hints[k], v) for k, v in value.items()})
    if origin is list:
        if not isinstance(value, list):
            raise TypeError(f"expected a list, got {type(value).__name__}")
        (item,) = typing.get_args(tp)
        return [build(item, v) for v in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise TypeError(f"expected an object, got {type(value).__name__}")
        _, item = typing.get_args(tp)
        return {str(k): build(item, v) for k, v in value.items()}
    if tp is typing.Any:
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"expected a number, got {type(value).__name__}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"expected an integer, got {type(value).__name__}")
        return value
    if tp in (str, bool):
        if not isinstance(value, tp):
            raise TypeError(f"expected {tp.__name__}, got {type(value).__name__}")
        return value
    raise TypeError(f"no rule for {tp!r}")


def json_schema(root, version: int, title: str, schema_id: str) -> dict:
    """The JSON Schema of dataclass ``root``, whose ``schema_version`` field must equal ``version``."""
    defs: dict[str, dict] = {}

    def schema(tp) -> dict:
        origin = typing.get_origin(tp)
        if origin in (typing.Union, types.UnionType):
            return {"anyOf": [schema(o) for o in typing.get_args(tp)]}
        if tp is type(None):
            return {"type": "null"}
        if dataclasses.is_dataclass(tp):
            if tp.__name__ not in defs:
                defs[tp.__name__] = {}  # placeholder against recursion
                hints = typing.get_type_hints(tp)
                required = [f.name for f in dataclasses.fields(tp)
                            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
                defs[tp.__name__] = {"type": "object", "properties": {n: schema(hints[n]) for n in hints},
                                     "required": required, "additionalProperties": False}
            return {"$ref": f"#/$defs/{tp.__name__}"}
        if origin is list:
            return {"type": "array", "items": schema(typing.get_args(tp)[0])}
        if origin is dict:
            return {"type": "object", "additionalProperties": schema(typing.get_args(tp)[1])}
        if tp is typing.Any:
            return {}
        return {"type": {str: "string", int: "integer", float: "number", bool: "boolean"}[tp]}

    schema(root)
    body = defs.pop(root.__name__)
    body["properties"]["schema_version"] = {"const": version}
    if "schema_version" not in body["required"]:
        body["required"].append("schema_version")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": schema_id, "title": title, **body, "$defs": defs}


def from_versioned(cls, data, version: int, source: str, what: str, again: str):
    """``data`` as ``cls`` when its ``schema_version`` is ``version``; otherwise one line saying
    which version it has (or what does not fit) and ``again``, the command that writes it anew."""
    from .errors import BadInput

    found = data.get("schema_version") if isinstance(data, dict) else None
    if found != version:
        raise BadInput(f"{source} has schema version {found!r}; this edgezoo reads version {version}: {again}")
    try:
        return build(cls, data)
    except (TypeError, ValueError, KeyError) as exc:
        raise BadInput(f"{source} does not follow {what} schema {version} ({exc}): {again}") from None


def read_json(path, what: str, again: str):
    """A JSON file's parsed content, or one line saying why it cannot be read as ``what``."""
    import json
    from pathlib import Path

    from .errors import BadInput

    try:
        return json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BadInput(f"{str(path)!r} cannot be read as {what} ({str(exc)[:120]}): {again}") from None
