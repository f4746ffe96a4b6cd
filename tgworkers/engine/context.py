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

from tgworkers.engine.wire.envelope import Envelope, HistoryEntry
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


class RunShared:
    """What every run of one executor hands its handlers alike: built once, not per job."""

    __slots__ = (
        "client",
        "clock",
        "queue",
        "redis",
        "resources",
        "steps_writer_of",
        "to_engine_ms",
    )

    def __init__(  # noqa: PLR0913 - a value object built once per executor
        self,
        *,
        queue: str,
        resources: Resources,
        client: Enqueuer,
        redis: Redis,
        clock: Callable[[], float] = time.time,
        to_engine_ms: Callable[[int], int] | None = None,
        steps_writer_of: Callable[[Any], StepsWriter | None] | None = None,
    ) -> None:
        self.queue = queue
        self.resources = resources
        self.client = client
        self.redis = redis
        self.clock = clock
        self.to_engine_ms = to_engine_ms
        """A time on `clock` as the engine's clock reads it, when the two differ (a test's)."""
        self.steps_writer_of = steps_writer_of
        """The fenced step writer of one run (its delivery), built when the run uses `steps`."""


class JobContext:
    """Identity of the running job and the tools a handler may use.

    Costs nothing until used: a run's context holds its envelope, partition, delivery
    count and the executor's `RunShared`; the identity is read from the envelope when
    asked, and `steps` (with its fenced writer) is built on first use. Building the
    15 fields and a writer per run was a twentieth of a no-op job's CPU (profiled).
    """

    __slots__ = ("_env", "_run", "_shared", "_steps", "deliveries", "partition")

    def __init__(  # noqa: PLR0913 - the keyword form: tests and the testing harness
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
        env = Envelope(id=job_id, name=name, payload=b"", enqueued_ms=enqueued_ms,
                       attempt=attempt, origin=origin, history=history)  # fmt: skip
        shared = RunShared(
            queue=queue, resources=resources, client=client, redis=redis, clock=clock,
            to_engine_ms=to_engine_ms, steps_writer_of=lambda _: steps_writer,
        )  # fmt: skip
        self._set(shared, env, partition, deliveries, None)
        self._steps = steps

    def _set(
        self, shared: RunShared, env: Envelope, partition: PartitionKeys, deliveries: int, run: Any
    ) -> None:
        self._shared, self._env, self.partition = shared, env, partition
        self.deliveries, self._run, self._steps = deliveries, run, None

    @classmethod
    def of_run(
        cls, shared: RunShared, env: Envelope, partition: PartitionKeys, deliveries: int, run: Any
    ) -> JobContext:
        """A worker's run: `run` (its delivery) is what `shared.steps_writer_of` is given.

        `_set`, written out: one call fewer per job.
        """
        ctx = cls.__new__(cls)
        ctx._shared, ctx._env, ctx.partition = shared, env, partition  # noqa: SLF001
        ctx.deliveries, ctx._run, ctx._steps = deliveries, run, None  # noqa: SLF001
        return ctx

    @property
    def job_id(self) -> str:
        return self._env.id

    @property
    def name(self) -> str:
        return self._env.name

    @property
    def attempt(self) -> int:
        return self._env.attempt

    @property
    def enqueued_ms(self) -> int:
        return self._env.enqueued_ms

    @property
    def origin(self) -> str | None:
        return self._env.origin

    @property
    def history(self) -> tuple[HistoryEntry, ...]:
        return self._env.history

    @property
    def queue(self) -> str:
        return self._shared.queue

    @property
    def redis(self) -> Redis:
        return self._shared.redis

    def resources(self, cls: type[R]) -> R:
        return self._shared.resources.get(cls)

    def now_ms(self) -> int:
        """The worker's clock in Unix ms (a test's fake clock under `tgworkers.testing`)."""
        return int(self._shared.clock() * 1000)

    @property
    def steps(self) -> Steps:
        if self._steps is None:
            of = self._shared.steps_writer_of
            writer = of(self._run) if of is not None else None
            self._steps = Steps(self.redis, self.partition, self.job_id, writer)
        return self._steps

    def key(self, name: str) -> str:
        """A Redis key this job type owns, in the job's partition (`PartitionKeys.job_key`)."""
        return self.partition.job_key(name)

    @property
    def client(self) -> Enqueuer:
        """The enqueue client, for jobs that create other jobs."""
        return self._shared.client

    async def enqueue(self, name: str, payload: Any, **kw: Any) -> EnqueueResult:
        kw.setdefault("origin", f"job:{self.name}:{self.job_id}")
        to_engine_ms = self._shared.to_engine_ms
        if to_engine_ms is not None and kw.get("run_at_ms") is not None:
            kw["run_at_ms"] = to_engine_ms(kw["run_at_ms"])  # read on ctx.now_ms()'s clock
        return await self._shared.client.enqueue(name, payload, **kw)
