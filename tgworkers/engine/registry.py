"""Declarations: job types, the processors that group them, and their schedules.

Declarations are frozen data built at module level with no side effects; the
engine never imports job modules. `tgworkers.jobs` lists the platform's
processors, and `run` hands the selected ones to the worker.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar

import msgspec

from tgworkers.engine.outcome import Outcome
from tgworkers.engine.retry import RetryPolicy
from tgworkers.errors import InputError

if TYPE_CHECKING:
    from tgworkers.engine.context import JobContext

P = TypeVar("P", bound=msgspec.Struct)

DEFAULT_CLEANUP_S: Final = 0.1
"""A cancelled run's clean-up budget unless its job type declares one: a clean-up write."""


class JobType(Generic[P]):
    """A job name, its typed payload, its handler and its policy.

    Args:
        name: the contract's dotted name, e.g. `cfb.settle`.
        payload: the msgspec Struct the payload must decode into.
        handler: `async (ctx, payload) -> Outcome`; raise to fail.
        job_id: derives the job id from the payload, so enqueueing the same logical
            job twice is a no-op; without it every enqueue gets a fresh id.
        partition_key: picks the partition (and the exclusivity key).
        exclusive: two jobs of the same queue with the same partition key never
            run at the same time.
        retry: overrides the processor's retry policy.
        timeout_s: the handler's time limit per attempt.
        validate: extra checks on a decoded payload; raises `ValueError` naming the field.
        expires_after_s: the default deadline of its jobs, counted from when a job is
            due (enqueued, or its run-at time); an enqueue's own `expires_at_ms` wins.
            A job delivered after it is dead-lettered `expired` instead of run.
        cleanup_s: how long a run may take to return once cancelled (a handler's
            `except CancelledError: await compensate(); raise`). A run whose lease
            cannot be renewed (its process cut off from Redis) is cancelled this much
            earlier, so its clean-up ends before its key lock and entry can pass to
            another worker. Default 0.1 s; at most 2·VT/3 less twice the lease margin,
            checked when a worker starts (a longer one stops start-up naming both).
    """

    __slots__ = (
        "cleanup_s",
        "decoder",
        "exclusive",
        "expires_after_s",
        "handler",
        "job_id",
        "name",
        "partition_key",
        "payload",
        "retry",
        "timeout_s",
        "validate",
    )

    def __init__(  # noqa: PLR0913 - a declaration, every field keyword-only
        self,
        *,
        name: str,
        payload: type[P],
        handler: Callable[[JobContext, P], Awaitable[Outcome]],
        job_id: Callable[[P], str] | None = None,
        partition_key: Callable[[P], str] | None = None,
        exclusive: bool = False,
        retry: RetryPolicy | None = None,
        timeout_s: float = 30.0,
        validate: Callable[[P], None] | None = None,
        expires_after_s: float | None = None,
        cleanup_s: float = DEFAULT_CLEANUP_S,
    ) -> None:
        if exclusive and partition_key is None:
            raise ValueError(f"job type {name}: exclusive needs a partition_key")
        self.cleanup_s = _seconds(name, "cleanup_s", cleanup_s)
        self.name = name
        self.payload = payload
        self.handler = handler
        self.job_id = job_id
        self.partition_key = partition_key
        self.exclusive = exclusive
        self.retry = retry
        self.timeout_s = timeout_s
        self.validate = validate
        self.expires_after_s = expires_after_s
        self.decoder: msgspec.json.Decoder[P] = msgspec.json.Decoder(payload)

    def __repr__(self) -> str:
        return f"JobType({self.name!r})"

    def with_handler(self, handler: Callable[[JobContext, P], Awaitable[Outcome]]) -> JobType[P]:
        """This declaration with another handler; every other field is kept, a new one too."""
        new = copy.copy(self)
        new.handler = handler
        return new

    def fields(self) -> dict[str, str]:
        """Payload field names (as on the wire) and their types, for `jobs --json`."""
        info = msgspec.inspect.type_info(self.payload)
        assert isinstance(info, msgspec.inspect.StructType)  # noqa: S101
        return {f.encode_name: _type_name(f.type) for f in info.fields}

    def expected(self) -> dict[str, dict[str, object]]:
        """Each payload field with its type and whether it is required (error messages)."""
        info = msgspec.inspect.type_info(self.payload)
        assert isinstance(info, msgspec.inspect.StructType)  # noqa: S101
        return {
            f.encode_name: {"type": _type_name(f.type), "required": f.required} for f in info.fields
        }

    def schema(self) -> dict[str, Any]:
        """The payload's JSON Schema (msgspec's), published by `jobs --json`."""
        return msgspec.json.schema(self.payload)


def _seconds(job: str, name: str, value: object) -> float:
    """A declared duration: a finite number of seconds, at least 0 (else a clear error)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"job type {job}: {name} must be a number of seconds, got {value!r}")
    if value < 0:
        raise ValueError(f"job type {job}: {name} must be >= 0, got {value!r}")
    return float(value)


def _type_name(t: msgspec.inspect.Type) -> str:
    names: dict[type[msgspec.inspect.Type], str] = {
        msgspec.inspect.StrType: "str",
        msgspec.inspect.IntType: "int",
        msgspec.inspect.BoolType: "bool",
        msgspec.inspect.FloatType: "float",
    }
    for cls, label in names.items():
        if isinstance(t, cls):
            return label
    if isinstance(t, msgspec.inspect.UnionType):
        return " | ".join(_type_name(x) for x in t.types)
    if isinstance(t, msgspec.inspect.NoneType):
        return "None"
    if isinstance(t, msgspec.inspect.LiteralType):
        return " | ".join(repr(v) for v in t.values)
    if isinstance(t, msgspec.inspect.ListType | msgspec.inspect.TupleType):
        return "list"
    return type(t).__name__.removesuffix("Type").lower()


class Schedule(msgspec.Struct, frozen=True, kw_only=True):
    """A job fired on a cron or interval schedule.

    `env` names the variable that overrides `default` (e.g. `CRON_CFB_SETTLE_SWEEP`).
    `overlap` is `skip` (no new tick while the previous tick's job is live) or `allow`.
    `misfire_grace_ms` None means one period.
    """

    job: str
    default: str
    env: str | None = None
    name: str | None = None
    payload: dict[str, Any] = msgspec.field(default_factory=dict)
    overlap: str = "skip"
    misfire_grace_ms: int | None = None

    @property
    def schedule_name(self) -> str:
        return self.name or self.job


class Processor(msgspec.Struct, frozen=True, kw_only=True):
    """A named group of job types sharing one queue, concurrency and schedules."""

    name: str
    job_types: tuple[JobType[Any], ...]
    enabled_by: str | None = None
    enabled_default: bool = True
    concurrency: int = 16
    partitions: int = 1
    schedules: tuple[Schedule, ...] = ()
    requires: tuple[str, ...] = ()
    """Settings that must be set for the processor to start (e.g. `SVC_PRICE_URL`)."""

    @property
    def queue(self) -> str:
        return self.name

    @property
    def env_name(self) -> str:
        """The processor's name in `CONCURRENCY_<P>`-style variables."""
        return self.name.upper().replace(".", "_").replace("-", "_")


class Registry:
    """The known processors, looked up by processor or job-type name."""

    def __init__(self, processors: Iterable[Processor]) -> None:
        self.processors: dict[str, Processor] = {}
        self.job_types: dict[str, JobType[Any]] = {}
        self.processor_of: dict[str, Processor] = {}
        for proc in processors:
            if proc.name in self.processors:
                raise ValueError(f"processor {proc.name} declared twice")
            self.processors[proc.name] = proc
            for jt in proc.job_types:
                if jt.name in self.job_types:
                    raise ValueError(f"job type {jt.name} declared twice")
                self.job_types[jt.name] = jt
                self.processor_of[jt.name] = proc

    def job_type(self, name: str) -> JobType[Any]:
        try:
            return self.job_types[name]
        except KeyError:
            known = ", ".join(sorted(self.job_types))
            raise InputError(f"unknown job type {name!r}; known: {known}") from None

    def processor(self, name: str) -> Processor:
        """A processor by its own name or by one of its job types' names."""
        if name in self.processors:
            return self.processors[name]
        if name in self.processor_of:
            return self.processor_of[name]
        known = ", ".join(sorted(set(self.processors) | set(self.job_types)))
        raise InputError(f"unknown processor {name!r}; valid names: {known}")

    def select(self, names: str | Iterable[str]) -> tuple[Processor, ...]:
        """Processors named in a comma list (processor or job-type names), in order."""
        items = names.split(",") if isinstance(names, str) else list(names)
        chosen: dict[str, Processor] = {}
        for raw in items:
            if name := raw.strip():
                proc = self.processor(name)
                chosen.setdefault(proc.name, proc)
        return tuple(chosen.values())

    def queue(self, name: str) -> Processor:
        """The processor owning queue `name` (queues are named after processors)."""
        if name in self.processors:
            return self.processors[name]
        known = ", ".join(sorted(self.processors))
        raise InputError(f"unknown queue {name!r}; known queues: {known}")
