"""`run_worker`: the real engine in the test's event loop, with the test in charge of time.

A `Harness` is one process built by the launcher `run` uses
(`tgworkers.bootstrap.launcher`: the same worker, resources and hooks, no HTTP server,
no signal handling) on a real Redis, reaching the fake peers over loopback; the test's
clock and peers are injected into it. The test enqueues, `drain`s a queue until
nothing is ready or running, reads what is queued, delayed or dead, and moves time
with `advance`: every delayed job and every dedupe record is moved that much earlier
on Redis's clock, the promoters are woken, and the schedules are ticked on the fake
clock, which handlers read from `ctx.now_ms()` too. Nobody sleeps.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, Protocol

import anyio
import msgspec
from redis.asyncio import Redis

from tgworkers.bootstrap.launcher import Injected, launch
from tgworkers.config import load_settings
from tgworkers.devstack.fake_peers import RecordedRequest
from tgworkers.engine.client import Client, EnqueueResult
from tgworkers.engine.layout import Layout
from tgworkers.engine.ops.dlq import DeadJob, DeadLetters
from tgworkers.engine.ops.timeline import Timeline
from tgworkers.engine.registry import Registry
from tgworkers.engine.telemetry.recorder import active as active_telemetry
from tgworkers.testing import assertions
from tgworkers.testing.apps import AppSource, load_app
from tgworkers.testing.clock import FakeClock
from tgworkers.testing.outcomes import JobRun, recording_registry
from tgworkers.testing.peers import FakePeerService
from tgworkers.testing.recording import EnqueuedJob, job_from_fields

QUIET = {
    "VISIBILITY_TIMEOUT_MS": "3000",
    "BACKOFF_DEFAULT_MS": "20",
    "BACKOFF_MAX_MS": "100",
    "WAIT_MAX_MS": "300000",
    "SHUTDOWN_GRACE_S": "2",
}
"""Test-friendly engine settings: quick retries and recovery, but a peer's `retryAt` or a
snooze waits as long as in production (up to WAIT_MAX_MS's default, 5 min): `advance`
gets there. A test's `env` wins."""


class Promoting(Protocol):
    """A processor's runtime as `advance` wakes it (`runtime.processor.ProcessorRuntime`)."""

    def wake_promoter(self) -> None: ...


class Ticking(Protocol):
    """The worker's scheduler as the harness ticks it (`schedule.scheduler.Scheduler`)."""

    @property
    def first_pass(self) -> anyio.Event: ...
    async def tick_once(self) -> float: ...


class RunningWorker(Protocol):
    """What the harness and a job test read of the worker the launcher built.

    The production `runtime.worker.Worker`, seen through what a test needs: its
    connection, registry, layout, client and dead letters, and the two in-process
    hooks time moves by (the promoters and the scheduler). A protocol, so `testing/`
    imports nothing of the runtime (tests/unit/test_layering.py).
    """

    @property
    def redis(self) -> Redis: ...
    @property
    def registry(self) -> Registry: ...
    @property
    def layout(self) -> Layout: ...
    @property
    def client(self) -> Client: ...
    @property
    def dead_letters(self) -> DeadLetters: ...
    @property
    def runtimes(self) -> Sequence[Promoting]: ...
    @property
    def scheduler(self) -> Ticking | None: ...


class Harness:
    """A running worker and the vocabulary a job test asserts in."""

    def __init__(
        self,
        worker: RunningWorker,
        peers: FakePeerService | None,
        clock: FakeClock,
        runs: list[JobRun],
    ) -> None:
        self.worker = worker
        self.peers = peers
        self.clock = clock
        self.runs = runs
        self._drained = 0
        self.client = worker.client
        self.redis: Redis = worker.redis
        self.registry: Registry = worker.registry
        self.timeline = Timeline(worker.redis, worker.registry, worker.layout)

    async def enqueue(self, name: str, payload: Any, **kw: Any) -> EnqueueResult:
        """`Client.enqueue`: `id=`, `run_at_ms=` (on the test's clock), `delay_s=`, `origin=`."""
        if kw.get("run_at_ms") is not None:
            kw["run_at_ms"] -= self.clock.skew_ms()  # Redis keeps real time
        return await self.client.enqueue(name, payload, **kw)

    async def drain(
        self, queue: str | None = None, *, with_delayed: bool = False, timeout_s: float = 15.0
    ) -> list[JobRun]:
        """Run until no job of `queue` (default: all) is ready or running.

        Returns the runs (of `queue`) since the previous `drain`.
        With `with_delayed`, time is also advanced to each delayed job (retries,
        snoozes) until none is left, like Oban's `drain_queue(with_scheduled: true)`.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            busy = await self.timeline.busy(queue)  # per partition in one MULTI
            if busy.jobs:
                if time.monotonic() > deadline:
                    raise AssertionError(f"drain({queue}) still busy after {timeout_s}s")
                await anyio.sleep(0.01)
            elif with_delayed and (due := busy.earliest_due_ms) is not None:
                await self.advance(timedelta(milliseconds=due - busy.now_ms + 1))
            else:
                first, self._drained = self._drained, len(self.runs)
                return [r for r in self.runs[first:] if queue is None or r.queue == queue]

    async def advance(self, by: float | timedelta) -> None:
        """Move time forward: delayed jobs come due, dedupe windows pass, schedules tick."""
        step_ms = self.clock.advance(by)
        await self.timeline.shift(step_ms)  # Redis keeps real time: its due times move instead
        for rt in self.worker.runtimes:
            rt.wake_promoter()
        if self.worker.scheduler is not None:
            await self.worker.scheduler.tick_once()

    async def queued(self, name: str | None = None) -> list[EnqueuedJob]:
        """Jobs waiting: ready (or running: an entry stays until settled), then delayed.

        Times (`at_ms`) are on the test's clock, as the handlers see them.
        """
        queue = self.registry.processor_of[name].queue if name else None
        skew = self.clock.skew_ms()
        jobs = []
        for waiting in await self.timeline.waiting(queue):
            job = job_from_fields(waiting.fields, at_ms=waiting.at_ms + skew, queue=waiting.queue)
            jobs.append(msgspec.structs.replace(job, delayed=True) if waiting.delayed else job)
        return [j for j in jobs if name is None or j.name == name]

    async def dead(self, queue: str) -> list[DeadJob]:
        return [job async for job in self.worker.dead_letters.iterate(queue)]

    # -- assertions ------------------------------------------------------------

    async def assert_enqueued(
        self, name: str, *, payload: Any = None, at: Any = None, within_ms: int = 1000
    ) -> EnqueuedJob:
        jobs = await self.queued(name)
        return assertions.match_enqueued(jobs, name, payload=payload, at=at, within_ms=within_ms)

    async def assert_not_enqueued(self, name: str, *, payload: Any = None) -> None:
        assertions.match_none_enqueued(await self.queued(name), name, payload=payload)

    async def assert_dead_lettered(
        self, name: str, job_id: str | None = None, *, reason: str | None = None
    ) -> DeadJob:
        queue = self.registry.processor_of[name].queue
        return assertions.assert_dead_lettered(
            await self.dead(queue), job_id, name=name, reason=reason
        )

    def assert_peer_called(
        self, peer: str, method: str, path: str, **kw: Any
    ) -> list[RecordedRequest]:
        if self.peers is None:
            raise AssertionError("no fake peers in this harness")
        return assertions.assert_peer_called(self.peers.requests(), peer, method, path, **kw)


@asynccontextmanager
async def run_worker(
    redis_url: str,
    processors: str,
    *,
    app: AppSource = None,
    peers: FakePeerService | None = None,
    clock: FakeClock | None = None,
    env: Mapping[str, Any] | None = None,
) -> AsyncIterator[Harness]:
    """A worker running `processors` (comma list) of `app` until the block ends."""
    values = {**QUIET, **(peers.env() if peers is not None else {}), "REDIS_URL": redis_url}
    values.update({k: str(v) for k, v in (env or {}).items()})
    settings = load_settings(values, None)
    runs: list[JobRun] = []
    registry = recording_registry(load_app(app), runs.append)
    clock = clock or FakeClock(ticking=True)
    if peers is not None:
        peers.state.clock = clock  # the fakes' "now" (a bet's tEnd) follows advance()
    injected = Injected(
        clock=clock,  # handlers' ctx.now_ms() and the schedules follow advance()
        telemetry=active_telemetry(),  # whatever the test installed, left to it
        peers=peers.network_peers(settings) if peers is not None else None,
    )
    launcher = launch(
        settings, registry, registry.select(processors), consumer="tgworkers-testing",
        injected=injected, serve_http=False, handle_signals=False,
    )  # fmt: skip
    async with launcher.running() as worker:
        if worker.scheduler is not None:  # seen before any advance() moves the clock
            with anyio.fail_after(10):
                await worker.scheduler.first_pass.wait()
        yield Harness(worker, peers, clock, runs)
