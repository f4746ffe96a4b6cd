"""What a producer must know about a job type, as data: `jobs --json` publishes it.

A producer outside the worker (a Python service without the registry, the
TypeScript client) needs, per job type: its queue and partition count, the JSON
Schema of its payload, and how the job id and the partition key derive from the
payload. Those two are Python callables in a `JobType`; they are published as
templates (`"cfb.settle:{betId}"`) found by calling them on probe payloads whose
string fields hold markers, and kept only when a second probe with other markers
gives exactly what the template predicts. A callable that is not a plain
template (it hashes, or reads a number) publishes `null` with
`jobIdFromPayload: true`: producers must then pass the id themselves.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

import msgspec

from tgworkers.engine.registry import JobType, Processor

_MARKS: Final = ("\u27e6", "\u27e7"), ("\u2983", "\u2984")
"""Probe markers around a field name; the second probe doubles the name (another length)."""
_FIELD: Final = re.compile(r"\{(\w+)\}")
_SIMPLE: Final[dict[type[msgspec.inspect.Type], tuple[Any, Any]]] = {
    msgspec.inspect.BoolType: (False, True),
    msgspec.inspect.IntType: (0, 1),
    msgspec.inspect.FloatType: (0.0, 1.5),
    msgspec.inspect.NoneType: (None, None),
}
"""Per probe, a different value: a derivation reading a non-text field is no template."""


class JobSpec(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """One job type as a producer sees it (an item of `jobs --json`)."""

    name: str
    queue: str
    partitions: int = 1
    schema: dict[str, Any] = msgspec.field(default_factory=dict)
    job_id: str | None = None
    job_id_from_payload: bool = False
    partition_key: str | None = None
    partition_key_from_payload: bool = False


def _marked(name: str, mark: tuple[str, str]) -> str:
    body = name if mark == _MARKS[0] else f"{name}.{name}"
    return f"{mark[0]}{body}{mark[1]}"


def _probe_value(t: msgspec.inspect.Type, mark: tuple[str, str], name: str) -> Any:
    if isinstance(t, msgspec.inspect.StrType):
        return _marked(name, mark)
    second = mark != _MARKS[0]
    for cls, values in _SIMPLE.items():
        if isinstance(t, cls):
            return values[second]
    if isinstance(t, msgspec.inspect.LiteralType):
        return t.values[-1 if second else 0]
    if isinstance(t, msgspec.inspect.UnionType):
        return _probe_value(t.types[0], mark, name)
    if isinstance(t, msgspec.inspect.ListType | msgspec.inspect.TupleType):
        return []
    if isinstance(t, msgspec.inspect.DictType):
        return {}
    raise ValueError(f"no probe value for {type(t).__name__}")


def _fields(jt: JobType[Any]) -> tuple[msgspec.inspect.Field, ...]:
    info = msgspec.inspect.type_info(jt.payload)
    assert isinstance(info, msgspec.inspect.StructType)  # noqa: S101
    return info.fields


def _probe(jt: JobType[Any], mark: tuple[str, str]) -> Any:
    doc = {f.encode_name: _probe_value(f.type, mark, f.encode_name) for f in _fields(jt)}
    return msgspec.convert(doc, jt.payload)


def template_of(jt: JobType[Any], derive: Callable[[Any], str] | None) -> str | None:
    """The template `derive` follows (`"cfb.settle:{betId}"`), or None when it is not one."""
    if derive is None:
        return None
    try:
        first, second = (_probe(jt, mark) for mark in _MARKS)
        o1, c1 = _MARKS[0]
        template = re.sub(f"{o1}(\\w+){c1}", r"{\1}", derive(first))
        expected = _FIELD.sub(lambda m: _marked(m.group(1), _MARKS[1]), template)
        names = {f.encode_name for f in _fields(jt)}
        unknown = set(_FIELD.findall(template)) - names
        if o1 in template or unknown or derive(second) != expected:
            return None
    except (ValueError, TypeError, AttributeError, msgspec.ValidationError):
        return None
    return template


def render(template: str, doc: dict[str, Any]) -> str:
    """A template filled from a payload's wire fields (the producer side of `template_of`)."""
    return _FIELD.sub(lambda m: str(doc[m.group(1)]), template)


def spec_of(jt: JobType[Any], proc: Processor, partitions: int) -> JobSpec:
    """A job type's `JobSpec` under a partition count (`PARTITIONS_<P>` applied by the caller)."""
    return JobSpec(
        name=jt.name,
        queue=proc.queue,
        partitions=partitions,
        schema=jt.schema(),
        job_id=template_of(jt, jt.job_id),
        job_id_from_payload=jt.job_id is not None,
        partition_key=template_of(jt, jt.partition_key),
        partition_key_from_payload=jt.partition_key is not None,
    )
