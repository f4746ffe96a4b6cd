"""Payload Structs rebuilt from the JSON Schemas `jobs --json` publishes.

A producer without the job modules still validates a payload before it reaches
Redis: each schema (the subset msgspec emits for a payload Struct: objects with
typed properties, `required`, `additionalProperties: false`, unions with null,
enums, arrays, string and number bounds) becomes a `msgspec.defstruct` with the
same wire names, defaults and constraints. Checks a job module makes in Python
(`JobType.validate`) cannot travel as a schema: the worker still dead-letters a
payload that fails them, naming the field.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

import msgspec

_SCALARS: Final[dict[str, Any]] = {
    "string": str,
    "integer": int,
    "number": float,
    "boolean": bool,
    "null": type(None),
}
_META: Final = {
    "minLength": "min_length",
    "maxLength": "max_length",
    "pattern": "pattern",
    "minimum": "ge",
    "maximum": "le",
    "exclusiveMinimum": "gt",
    "exclusiveMaximum": "lt",
    "minItems": "min_length",
    "maxItems": "max_length",
}


class SchemaError(ValueError):
    """A schema this module cannot turn into a type; the message names the part."""


class _Builder:
    def __init__(self, defs: dict[str, Any]) -> None:
        self.defs = defs
        self.built: dict[str, Any] = {}

    def type_of(self, node: dict[str, Any]) -> Any:
        if "$ref" in node:
            return self.struct(node["$ref"].rsplit("/", 1)[-1])
        if "anyOf" in node:
            members = tuple(self.type_of(n) for n in node["anyOf"])
            return _union(members)
        if "enum" in node:
            return Literal[tuple(node["enum"])]
        kind = node.get("type")
        if kind == "array":
            base: Any = list[self.type_of(node.get("items", {}))]  # type: ignore[misc]
        elif kind == "object":
            base = dict[str, Any]
        elif kind in _SCALARS:
            base = _SCALARS[kind]
        elif kind is None:
            base = Any
        else:
            raise SchemaError(f"unsupported schema type {kind!r}")
        meta = {_META[k]: v for k, v in node.items() if k in _META}
        return Annotated[base, msgspec.Meta(**meta)] if meta else base

    def struct(self, name: str) -> Any:
        if name in self.built:
            return self.built[name]
        node = self.defs.get(name)
        if node is None or node.get("type") != "object":
            raise SchemaError(f"schema definition {name!r} is missing or not an object")
        required = set(node.get("required", ()))
        fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
        for prop, sub in node.get("properties", {}).items():
            if prop in required:
                fields.append((prop, self.type_of(sub)))
            else:
                fields.append((prop, self.type_of(sub), sub.get("default")))
        fields.sort(key=lambda f: len(f) == 3)  # noqa: PLR2004 - required fields first
        built = msgspec.defstruct(
            name,
            fields,
            kw_only=True,
            frozen=True,
            forbid_unknown_fields=node.get("additionalProperties") is False,
        )
        self.built[name] = built
        return built


def _union(members: tuple[Any, ...]) -> Any:
    out = members[0]
    for m in members[1:]:
        out = out | m
    return out


def struct_from_schema(schema: dict[str, Any]) -> type[msgspec.Struct]:
    """The payload Struct a `msgspec.json.schema` document describes.

    Raises:
        SchemaError: naming what is not supported.
    """
    ref = schema.get("$ref")
    if not isinstance(ref, str):
        raise SchemaError("payload schema has no top-level $ref to its object")
    result: type[msgspec.Struct] = _Builder(schema.get("$defs", {})).struct(ref.rsplit("/", 1)[-1])
    return result
