"""What a handler gets besides its payload: the job's identity and its tools.

`ctx.resources(Peers)` returns what `run` registered for that type, so the
engine never imports the peers or the jobs. `ctx.steps` remembers which steps of
a multi-step job finished, so a retry skips them; the record is cleared when the
job is done (kept when it is dead-lettered, so a replay skips them too).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
from redis.asyncio import Redis

from tgworkers.engine.wire.envelope import HistoryEntry
from tgworkers.engine.wire.keys import PartitionKeys

if TYPE_CHECKING:
    from tgworkers.engine.enqueueing import Enqueuer, EnqueueResult

R = TypeVar("R")

request_id_var: ContextVar[str | None] = ContextVar("tgworkers_request_id", default=None)
"""`{job id}:{attempt}` of the running job: peer clients send it as X-Request-Id."""

_steps_codec = msgspec.json.Decoder(list[str])

StepsWriter = Callable[[str, bytes], Awaitable[bool]]
"""Writes (job id, steps JSON) if the run still holds its delivery; False when fenced."""


class LeaseLostError(Exception):
    """This run's delivery was taken over: nothing it does is recorded any more."""


class Resources:
    """A typed map from a type to the one instance of it a worker runs with."""

    def __init__(self, *items: object) -> None:
        self._items: dict[type[Any], object] = {type(i): i for i in items}

    def add(self, item: object, as_type: type[Any] | None = None) -> None:
        self._items[as_type or type(item)] = item

    def get(self, cls: type[R]) -> R:
        try:
            item = self._items[cls]
        except KeyError:
            raise LookupError(f"no resource of type {cls.__name__} was registered") from None
        assert isinstance(item, cls)  # noqa: S101
        return item


class Steps:
    """The finished steps of one job, kept in the partition's steps hash."""

    def __init__(
        self, redis: Redis, pk: PartitionKeys, job_id: str, writer: StepsWriter | None = None
    ) -> None:
        self._redis = redis
        self._pk = pk
        self._job_id = job_id
        self._writer = writer
        self._done: set[str] | None = None

    async def _load(self) -> set[str]:
        if self._done is None:
            raw = await self._redis.hget(self._pk.steps, self._job_id)
            self._done = set(_steps_codec.decode(raw)) if raw else set()
        return self._done

    async def is_done(self, step: str) -> bool:
        return step in await self._load()

    async def mark_done(self, step: str) -> None:
        """Record `step`, fenced: a run whose delivery was taken over records nothing.

        Raises:
            LeaseLostError: another delivery of this job owns it now; stop here.
        """
        done = await self._load()
        done.add(step)
        blob = msgspec.json.encode(sorted(done))
        if self._writer is None:  # outside a worker (tests, tools): nothing to fence
            await self._redis.hset(self._pk.steps, self._job_id, blob)
        elif not await self._writer(self._job_id, blob):
            raise LeaseLostError(
                f"job {self._job_id}: delivery taken over; step {step!r} not recorded"
            )

    async def once(self, step: str, act: Callable[[], Awaitable[object]]) -> bool:
        """Run `act` unless `step` finished in an earlier run, then record it.

        The multi-step idiom in one call: a step whose call went through is not sent
        again after a crash or a retry (its peer call carries its own Idempotency-Key
        for the window between the call and the record). True when `act` ran now.
        """
        if await self.is_done(step):
            return False
        await act()
        await self.mark_done(step)
        return True


class JobContext:
    """Identity of the running job and the tools a handler may use."""

    __slots__ = (
        "_client",
        "_clock",
        "_resources",
        "_steps",
        "_steps_writer",
        "_to_engine_ms",
        "attempt",
        "deliveries",
        "enqueued_ms",
        "history",
        "job_id",
        "name",
        "origin",
        "partition",
        "queue",
        "redis",
    )

    def __init__(  # noqa: PLR0913 - a value object built in one place (the executor)
        self,
        *,
        job_id: str,
        name: str,
        attempt: int,
        queue: str,
        partition: PartitionKeys,
        enqueued_ms: int,
        deliveries: int = 1,
        origin: str | None = None,
        history: tuple[HistoryEntry, ...] = (),
        resources: Resources,
        client: Enqueuer,
        redis: Redis,
        steps_writer: StepsWriter | None = None,
        steps: Steps | None = None,
        clock: Callable[[], float] = time.time,
        to_engine_ms: Callable[[int], int] | None = None,
    ) -> None:
        self.job_id = job_id
        self.name = name
        self.attempt = attempt
        self.queue = queue
        self.partition = partition
        self.enqueued_ms = enqueued_ms
        self.deliveries = deliveries
        self.origin = origin
        self.history = history
        self._resources = resources
        self._client = client
        self.redis = redis
        self._steps = steps
        self._steps_writer = steps_writer
        self._clock = clock
        self._to_engine_ms = to_engine_ms
        """A time on `clock` as the engine's clock reads it, when the two differ (a test's)."""

    def resources(self, cls: type[R]) -> R:
        return self._resources.get(cls)

    def now_ms(self) -> int:
        """The worker's clock in Unix ms (a test's fake clock under `tgworkers.testing`)."""
        return int(self._clock() * 1000)

    @property
    def steps(self) -> Steps:
        if self._steps is None:
            self._steps = Steps(self.redis, self.partition, self.job_id, self._steps_writer)
        return self._steps

    def key(self, name: str) -> str:
        """A Redis key this job type owns, in the job's partition (`PartitionKeys.job_key`)."""
        return self.partition.job_key(name)

    @property
    def client(self) -> Enqueuer:
        """The enqueue client, for jobs that create other jobs."""
        return self._client

    async def enqueue(self, name: str, payload: Any, **kw: Any) -> EnqueueResult:
        kw.setdefault("origin", f"job:{self.name}:{self.job_id}")
        if self._to_engine_ms is not None and kw.get("run_at_ms") is not None:
            kw["run_at_ms"] = self._to_engine_ms(kw["run_at_ms"])  # read on ctx.now_ms()'s clock
        return await self._client.enqueue(name, payload, **kw)
