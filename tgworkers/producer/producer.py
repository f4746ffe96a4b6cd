"""`Producer`: enqueue tgworkers jobs from any Python service in one line.

```python
producer = tgworkers.Producer.from_url(os.environ["REDIS_URL"], prefix="tgw")
result = await producer.enqueue("cfb.settle", {"betId": "b_1"}, at=t_end)
result.created  # False: a job with that id already existed
```

It needs only the job types (the installed registry, or the JSON of
`tgworkers jobs --json`) and the few settings that decide where a job goes:
`QUEUE_PREFIX`, `DLQ_SUFFIX`, `DEDUPE_TTL_S`, `MAX_PAYLOAD_BYTES` and
`PARTITIONS_<P>`; never the worker's peers, keys or schedules. Enqueueing is the
engine's own `Client` (validation, ids, partitions, the enqueue script), so a
producer and the worker cannot disagree.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Final

from redis.asyncio import Redis

from tgworkers.config import Settings, load_settings
from tgworkers.engine.client import Client, EnqueueRequest, EnqueueResult
from tgworkers.engine.registry import Registry
from tgworkers.engine.wire.connection import connect
from tgworkers.errors import InputError
from tgworkers.producer.catalogue import JobsSource, load_registry

PRODUCER_VARIABLES: Final = (
    "REDIS_URL",
    "QUEUE_PREFIX",
    "DLQ_SUFFIX",
    "DEDUPE_TTL_S",
    "MAX_PAYLOAD_BYTES",
)
"""What `from_env` reads, besides every `PARTITIONS_<P>`."""

When = datetime | int | float | None
"""`at=`: an aware datetime (naive is UTC) or Unix ms."""
Delay = timedelta | float | None
"""`delay=`: a timedelta or seconds."""


@dataclass(frozen=True, slots=True)
class Job:
    """One job for `enqueue_many`."""

    name: str
    payload: Any
    id: str | None = None
    at: When = None
    delay: Delay = None
    origin: str | None = None
    expires_at: When = None
    """Deadline: delivered after it, the job is dead-lettered `expired` instead of run."""


def _at_ms(at: When) -> int | None:
    if at is None:
        return None
    if isinstance(at, datetime):
        moment = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1000)
    return int(at)


def _delay_s(delay: Delay) -> float | None:
    if delay is None:
        return None
    seconds = delay.total_seconds() if isinstance(delay, timedelta) else float(delay)
    if seconds < 0:
        raise InputError(f"delay: expected a duration >= 0, got {seconds:g} s")
    return seconds


class Producer:
    """Enqueues jobs; `from_url` / `from_env` build one, `aclose` (or `async with`) ends it."""

    def __init__(
        self, redis: Redis, registry: Registry, settings: Settings, *, origin: str | None = None
    ) -> None:
        self.client = Client(redis, registry, settings)
        self.origin = origin
        self._owns_redis = False

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str | None = None,
        jobs: JobsSource = None,
        partitions: Mapping[str, int] | None = None,
        origin: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Producer:
        """A producer writing to the Redis at `url`.

        Args:
            url: `redis://`, `rediss://` or a cluster URL, as `REDIS_URL`.
            prefix: `QUEUE_PREFIX` of the workers (default `tgw`).
            jobs: a `Registry`, the path or document of `tgworkers jobs --json`;
                None means the jobs installed with tgworkers.
            partitions: partition count per queue, when it differs from the jobs'.
            origin: who enqueues (kept on the job, shown in the DLQ).
            env: other producer variables (`DLQ_SUFFIX`, `DEDUPE_TTL_S`, ...).
        """
        values = dict(env or {})
        values["REDIS_URL"] = url
        if prefix is not None:
            values["QUEUE_PREFIX"] = prefix
        registry = load_registry(jobs)
        for queue, count in (partitions or {}).items():
            values[f"PARTITIONS_{registry.queue(queue).env_name}"] = str(count)
        settings = load_settings(values, None)
        redis = connect(settings.redis_url.reveal(), cluster=settings.redis_cluster)
        producer = cls(redis, registry, settings, origin=origin)
        producer._owns_redis = True
        return producer

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        jobs: JobsSource = None,
        origin: str | None = None,
    ) -> Producer:
        """A producer configured like the workers: `REDIS_URL`, `QUEUE_PREFIX`, `PARTITIONS_*`..."""
        source = os.environ if environ is None else environ
        picked = {
            k: v
            for k, v in source.items()
            if k in PRODUCER_VARIABLES or k.startswith("PARTITIONS_")
        }
        url = picked.pop("REDIS_URL", "redis://127.0.0.1:6379/0")
        return cls.from_url(url, jobs=jobs, origin=origin, env=picked)

    async def enqueue(  # noqa: PLR0913 - keyword-only enqueue options
        self,
        name: str,
        payload: Any,
        *,
        id: str | None = None,
        at: When = None,
        delay: Delay = None,
        origin: str | None = None,
        expires_at: When = None,
    ) -> EnqueueResult:
        """Validate and enqueue one job; `.created` is False when its id already existed.

        `expires_at` (an aware datetime, naive is UTC, or Unix ms) is the job's deadline:
        delivered after it, it is dead-lettered with reason `expired` instead of run.
        Without it the job type's default applies (`JobType.expires_after_s`), if any.
        """
        job = Job(name, payload, id=id, at=at, delay=delay, origin=origin, expires_at=expires_at)
        return (await self.enqueue_many([job]))[0]

    async def enqueue_many(self, jobs: Iterable[Job]) -> list[EnqueueResult]:
        """Validate every job first (all or nothing), then one script call per partition chunk."""
        requests = []
        for job in jobs:
            if job.at is not None and job.delay is not None:
                raise InputError(f"{job.name}: give at= or delay=, not both")
            requests.append(
                EnqueueRequest(
                    name=job.name,
                    payload=job.payload,
                    id=job.id,
                    run_at_ms=_at_ms(job.at),
                    delay_s=_delay_s(job.delay),
                    origin=job.origin or self.origin,
                    expires_at_ms=_at_ms(job.expires_at),
                )
            )
        return await self.client.enqueue_many(requests)

    async def state(self, name: str, job_id: str, payload: Any = None) -> str | None:
        """Where a job is: `ready`, `delayed`, `dead-lettered`, `done`, or None."""
        return await self.client.state(name, job_id, payload)

    async def aclose(self) -> None:
        if self._owns_redis:
            await self.client.redis.aclose()

    async def __aenter__(self) -> Producer:
        return self

    async def __aexit__(
        self, _: type[BaseException] | None, __: BaseException | None, ___: TracebackType | None
    ) -> None:
        await self.aclose()
