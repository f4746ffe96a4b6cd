"""What a test sees of enqueued jobs: `EnqueuedJob`, and a client that only records.

`RecordingClient` is the engine's `Client` with the last step swapped: every
request goes through the same `prepare` (validation, job id, partition, due
time) and is recorded instead of sent. A second job with a recorded id reports
`created=False`, as the enqueue script would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import msgspec
from redis.asyncio import Redis

from tgworkers.config import Settings
from tgworkers.engine.client import Client, EnqueueRequest, EnqueueResult
from tgworkers.engine.ops.entries import Envelope, envelope_of, payload_of, record_envelope
from tgworkers.engine.registry import Registry


class EnqueuedJob(msgspec.Struct, frozen=True, kw_only=True):
    """A job waiting in a queue (or recorded by `perform`), as assertions see it."""

    id: str
    name: str
    payload: Any
    at_ms: int
    origin: str | None = None
    queue: str = ""
    delayed: bool = False


def job_from_fields(fields: dict[bytes, bytes], *, at_ms: int, queue: str) -> EnqueuedJob:
    """An `EnqueuedJob` from stream fields (a ready entry or a delayed job's record)."""
    return _job(envelope_of(fields), fields, at_ms=at_ms, queue=queue)


def _job(env: Envelope | None, raw: object, *, at_ms: int, queue: str) -> EnqueuedJob:
    if env is None:
        raise AssertionError(f"not a job the engine wrote: {raw!r}")
    return EnqueuedJob(id=env.id, name=env.name, payload=payload_of(env.payload), at_ms=at_ms,
                       origin=env.origin, queue=queue, delayed=False)  # fmt: skip


class RecordingClient(Client):
    """Validates and prepares like production, then records instead of enqueueing."""

    def __init__(
        self,
        redis: Redis,
        registry: Registry,
        settings: Settings,
        clock: Callable[[], float],
    ) -> None:
        super().__init__(redis, registry, settings)
        self.clock = clock
        self.recorded: list[EnqueuedJob] = []

    async def enqueue_many(self, requests: Iterable[EnqueueRequest]) -> list[EnqueueResult]:
        now_ms = int(self.clock() * 1000)
        prepared = [self.prepare(r, now_ms, {}) for r in requests]  # all or nothing, as live
        results = []
        for pk, job, result in prepared:
            created = all(j.id != job.id for j in self.recorded)
            at_ms = job.due_ms or now_ms
            if created:
                env = record_envelope(job.fields_json)
                recorded = _job(env, job.fields_json, at_ms=at_ms, queue=pk.queue)
                self.recorded.append(msgspec.structs.replace(recorded, delayed=bool(job.due_ms)))
            results.append(msgspec.structs.replace(result, created=created))
        return results
