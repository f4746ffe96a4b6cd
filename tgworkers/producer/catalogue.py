"""A `Registry` a producer can enqueue with, from the installed jobs or `jobs --json`.

The producer never runs a handler, so job types built from `jobs --json` carry a
handler that refuses to run; what they keep is what enqueueing needs: the
payload Struct (from the schema), the job-id and partition-key templates and
the partition count of their queue.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import msgspec

from tgworkers.engine.context import JobContext
from tgworkers.engine.jobspec import JobSpec, render
from tgworkers.engine.outcome import Outcome
from tgworkers.engine.registry import JobType, Processor, Registry
from tgworkers.errors import ConfigError, InputError
from tgworkers.producer.schema import SchemaError, struct_from_schema

JobsSource = Registry | str | Path | Mapping[str, Any] | None
"""Where the job types come from: a Registry, a `jobs --json` file or document, or None."""


async def _not_here(_: JobContext, __: Any) -> Outcome:
    raise RuntimeError("a producer's job types are not run here; the worker runs them")


def _deriver(spec: JobSpec, template: str | None, *, from_payload: bool, what: str) -> Any:
    if template is not None:
        return lambda p: render(template, msgspec.to_builtins(p))
    if not from_payload:
        return None

    def refuse(_: Any) -> str:
        raise InputError(
            f"{spec.name}: its {what} is derived in code that `jobs --json` cannot publish; "
            "pass it explicitly or install the registry"
        )

    return refuse


def _job_type(spec: JobSpec) -> JobType[Any]:
    try:
        payload = struct_from_schema(spec.schema)
    except SchemaError as exc:
        raise ConfigError(f"jobs --json: {spec.name}: {exc}") from None
    job_id: Callable[[Any], str] | None = _deriver(
        spec, spec.job_id, from_payload=spec.job_id_from_payload, what="job id"
    )
    key: Callable[[Any], str] | None = _deriver(
        spec, spec.partition_key, from_payload=spec.partition_key_from_payload, what="partition key"
    )
    return JobType(
        name=spec.name, payload=payload, handler=_not_here, job_id=job_id, partition_key=key
    )


def registry_from_specs(specs: list[JobSpec]) -> Registry:
    """One processor per queue, holding that queue's job types and partition count."""
    by_queue: dict[str, list[JobSpec]] = defaultdict(list)
    for spec in specs:
        by_queue[spec.queue].append(spec)
    return Registry(
        Processor(
            name=queue,
            job_types=tuple(_job_type(s) for s in group),
            partitions=max(s.partitions for s in group),
        )
        for queue, group in by_queue.items()
    )


def load_registry(source: JobsSource) -> Registry:
    """The registry for `source`; None means the jobs installed with tgworkers."""
    if isinstance(source, Registry):
        return source
    if source is None:
        from tgworkers.jobs import PROCESSORS  # noqa: PLC0415 - only when asked for

        return Registry(PROCESSORS)
    if isinstance(source, str | Path):
        try:
            doc: Any = json.loads(Path(source).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"jobs file {source}: {exc}") from None
    else:
        doc = source
    try:
        specs = msgspec.convert(doc.get("jobs"), list[JobSpec])
    except (msgspec.ValidationError, AttributeError) as exc:
        raise ConfigError(f"jobs document: expected `jobs --json` output ({exc})") from None
    return registry_from_specs(specs)
