"""A worker process: lifecycle only, everything else is in the runtimes.

Duties:
1. build one `ProcessorRuntime` per selected processor and start their loops in
   one task group (every task has an owner);
2. poll the pause flags (control.py) and the worker registry heartbeat;
3. listen for Pub/Sub wake-ups of the delayed-job promoters;
4. on SIGTERM/SIGINT: stop reading, let in-flight jobs finish within
   `SHUTDOWN_GRACE_S`, hand the unfinished ones back so another worker takes
   them at once, settle what finished, and return (exit 0). A second signal
   returns at once, leaving held entries to the reclaim sweep (promise 10).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NamedTuple

import anyio
import structlog
from anyio.abc import TaskGroup
from redis.asyncio import Redis

from tgworkers.engine.client import Client
from tgworkers.engine.context import Resources
from tgworkers.engine.layout import Layout
from tgworkers.engine.live import Live
from tgworkers.engine.ops.control import POLL_INTERVAL_S, Control
from tgworkers.engine.ops.dlq import DeadLetters
from tgworkers.engine.ops.rates import RateLimiter
from tgworkers.engine.options import RuntimeOptions
from tgworkers.engine.partitions import PartitionRecords
from tgworkers.engine.registry import JobType, Processor, Registry
from tgworkers.engine.runtime.broker import Broker
from tgworkers.engine.runtime.cancels import apply_cancels
from tgworkers.engine.runtime.executor import Clock, Executor
from tgworkers.engine.runtime.finished_log import FinishedLog
from tgworkers.engine.runtime.processor import ProcessorRuntime
from tgworkers.engine.runtime.upkeep import check_eviction_policy, heartbeat, listen_for_wakeups
from tgworkers.engine.schedule.scheduler import Scheduler, build_schedules
from tgworkers.engine.settings import EngineSettings
from tgworkers.engine.telemetry.recorder import active as active_telemetry
from tgworkers.engine.wire.connection import (
    REDIS_ERRORS,
    RedisHealth,
    connect,
    connect_for_blocking,
    guarded,
)
from tgworkers.engine.wire.keys import HEARTBEAT_S
from tgworkers.engine.wire.scripts import Scripts

log = structlog.get_logger("tgworkers.worker")


ReloadHook = Callable[[EngineSettings, EngineSettings], Awaitable[None] | None]
"""Called with (old, new) after a hot reload swapped `worker.settings`."""


class Connections(NamedTuple):
    """A worker's two clients: short commands and scripts, and the blocking reads."""

    redis: Redis
    blocking: Redis


def open_connections(settings: EngineSettings, registry: Registry) -> Connections:
    """The clients of one worker process, sized for the processors it may ever run.

    Opened by the bootstrap (`tgworkers.bootstrap.process`) and handed to the worker;
    a worker built without them (tests, tools) opens its own the same way.
    """
    url, cluster = settings.redis_url.reveal(), settings.redis_cluster
    readers = max(4, len(registry.processors) + 1)  # one per processor that may run
    if cluster:  # one reader per partition: one XREADGROUP cannot span slots
        counts = [Layout(settings).partition_count(p) for p in registry.processors.values()]
        readers = max(readers, sum(counts) + 1)
    blocking = connect_for_blocking(url, block_ms=1000, max_connections=readers, cluster=cluster)
    return Connections(connect(url, cluster=cluster), blocking)


class Worker:
    """Runs the selected processors of one process until told to stop."""

    def __init__(  # noqa: PLR0913 - parts the bootstrap or the test harness passes in
        self,
        *,
        settings: EngineSettings,
        registry: Registry,
        processors: Sequence[Processor],
        consumer: str,
        resources: Resources | None = None,
        connections: Connections | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.clock = clock  # handlers' `ctx.now_ms()` and the schedules: a test's fake clock
        self.live = Live(settings)  # the one reference a reload swaps; every reader shares it
        self.registry = registry
        self.processors = tuple(processors)
        self.consumer = consumer
        self.resources = resources or Resources()
        conns = connections or open_connections(settings, registry)  # bootstrap passes them
        self.redis, self.blocking = conns.redis, conns.blocking
        self.health = RedisHealth()
        active_telemetry().track_health(self.health)  # error counts per kind, exported
        self.layout = Layout(self.live)
        self.scripts = Scripts(self.redis)  # one Layout and one Scripts, shared by the parts
        self.client = Client(
            self.redis, registry, self.live, layout=self.layout, scripts=self.scripts
        )
        self.control = Control(self.redis, registry, self.layout, self.scripts)
        self.partition_records = PartitionRecords(self.redis, self.layout)
        self.broker = Broker(self.redis, self.blocking, consumer)
        self.rates = RateLimiter(self.redis, self.live, self.scripts)  # peers take it too
        self.finished = FinishedLog(self.redis, self.live, consumer, self.health, self.scripts)
        self.runtimes = [self._runtime(p) for p in self.processors]
        self.scheduler: Scheduler | None = None
        if schedules := build_schedules(self.processors, settings):
            self.scheduler = Scheduler(
                redis=self.redis, client=self.client, schedules=schedules,
                prefix=settings.queue_prefix, health=self.health, clock=clock,
            )  # fmt: skip
        self.started = anyio.Event()
        self.stop_requested = anyio.Event()
        self._force = anyio.Event()
        self.dead_letters = DeadLetters(self.redis, registry, self.layout, self.scripts)
        self.resources.add(self.client)
        self.resources.add(self.dead_letters)
        self.reload_hooks: list[ReloadHook] = [self._reschedule]
        self.draining: list[ProcessorRuntime] = []
        self._tg: TaskGroup | None = None
        self._stops: dict[ProcessorRuntime, anyio.Event] = {}
        self._acked_epoch = -1

    @property
    def settings(self) -> EngineSettings:
        return self.live.value

    @settings.setter
    def settings(self, new: EngineSettings) -> None:
        self.live.value = new

    def _runtime(self, proc: Processor) -> ProcessorRuntime:
        s = self.settings
        over = s.processor_overrides(proc.env_name)

        def policy_of(jt: JobType[Any]) -> Any:
            return jt.retry or self.settings.retry_policy(proc.env_name)

        def timeout_of(jt: JobType[Any]) -> float:
            return self.settings.processor_overrides(proc.env_name).timeout_s or jt.timeout_s

        executor = Executor(
            queue=proc.queue, policy_of=policy_of, timeout_of=timeout_of,
            max_payload_bytes=s.max_payload_bytes, resources=self.resources,
            client=self.client, redis=self.redis, scripts=self.scripts, consumer=self.consumer,
            clock=self.clock,
        )  # fmt: skip
        executor.rate = self.rates.queue_gate(proc.queue, proc.env_name)
        options = RuntimeOptions(
            concurrency=over.concurrency or proc.concurrency,
            visibility_timeout_ms=s.visibility_timeout_ms,
            max_deliveries=s.max_deliveries_effective,
            dedupe_ttl_ms=s.dedupe_ttl_s * 1000,
            read_per_partition=s.redis_cluster,
        )
        rt = ProcessorRuntime(
            processor=proc, partitions=self.layout.partitions(proc), broker=self.broker,
            scripts=self.scripts, executor=executor, options=options, health=self.health,
            is_alive=self.is_alive,
        )  # fmt: skip
        rt.observers.append(self.finished.observe)  # finish records for lookup (finished.py)
        return rt

    def _reschedule(self, old: EngineSettings, new: EngineSettings) -> None:
        """Reload hook: schedules follow `CRON_*`, `SCHEDULES_TZ` and processors switched.

        Applied without a restart; a scheduler is started if there was none.
        """
        schedules = build_schedules(self.processors, new)
        if self.scheduler is None:
            if schedules and self._tg is not None:
                self.scheduler = Scheduler(
                    redis=self.redis, client=self.client, schedules=schedules,
                    prefix=new.queue_prefix, health=self.health, clock=self.clock,
                )  # fmt: skip
                self._tg.start_soon(self.scheduler.run)
            return
        names = [(s.name, s.expression, s.spec) for s in schedules]
        if names != [(s.name, s.expression, s.spec) for s in self.scheduler.schedules]:
            self.scheduler.replace(schedules)
            log.info("schedules.replaced", schedules=[s.name for s in schedules])

    def runtime(self, queue: str) -> ProcessorRuntime:
        return next(rt for rt in self.runtimes if rt.queue == queue)

    async def _host_runtime(
        self, rt: ProcessorRuntime, *, task_status: anyio.abc.TaskStatus[None]
    ) -> None:
        """Own one runtime's loops in a child task group, so it can be stopped alone."""
        stop = self._stops[rt] = anyio.Event()
        async with anyio.create_task_group() as tg:
            await rt.start(tg)
            task_status.started()
            await stop.wait()
            tg.cancel_scope.cancel()

    async def add_runtime(self, proc: Processor) -> ProcessorRuntime:
        """Start a processor on a running worker (a hot reload switched it on)."""
        if self._tg is None:
            raise RuntimeError("add_runtime needs a running worker")
        rt = self._runtime(proc)
        self.runtimes.append(rt)
        self.processors = (*self.processors, proc)
        await self._tg.start(self._host_runtime, rt)
        log.info("processor.started", queue=rt.queue)
        return rt

    def remove_runtime(self, queue: str) -> ProcessorRuntime:
        """Switch a processor off: read nothing new; in-flight jobs finish in the background."""
        if self._tg is None:
            raise RuntimeError("remove_runtime needs a running worker")
        rt = self.runtime(queue)
        self.runtimes.remove(rt)
        self.processors = tuple(p for p in self.processors if p.name != rt.processor.name)
        self.draining.append(rt)
        rt.stop_reading()
        self._tg.start_soon(self._retire, rt)
        return rt

    async def _retire(self, rt: ProcessorRuntime) -> None:
        """Let in-flight jobs finish within the grace, hand back the rest, stop the loops."""
        with anyio.move_on_after(self.settings.shutdown_grace_s) as scope:
            await rt.wait_idle()
        if scope.cancelled_caught:
            rt.cancel_running()
            with anyio.move_on_after(5):
                await rt.wait_idle()
        try:
            for pk in rt.partitions:
                await self.scripts.remove_consumer(pk, self.consumer)
        except REDIS_ERRORS as exc:
            log.warning("processor.leave_failed", queue=rt.queue, error=type(exc).__name__)
        self._stops.pop(rt).set()
        self.draining.remove(rt)
        log.info("processor.stopped", queue=rt.queue, drained=not scope.cancelled_caught)

    async def is_alive(self, consumer: str) -> bool:
        score = await self.redis.zscore(self.layout.globals.workers, consumer)
        return score is not None and score > time.time() * 1000 - 3 * HEARTBEAT_S * 1000

    # ------------------------------------------------------------------ run

    async def run(self, *, handle_signals: bool = True) -> None:
        """Run until `request_stop()` or a signal; returns after a graceful stop."""
        log.info("worker.starting", consumer=self.consumer,
                 processors=[p.name for p in self.processors])  # fmt: skip
        async with anyio.create_task_group() as tg:
            self._tg = tg
            if handle_signals:
                tg.start_soon(self._signal_loop)
            await check_eviction_policy(self.redis)
            await self._claim_partitions()
            # registered and paused as the flags say before any read: a repartition
            # that marked the queue meanwhile waits for this worker's ack
            await guarded(self.health, "heartbeat", self.heartbeat_once)
            await guarded(self.health, "control", self.control_once)
            for rt in self.runtimes:
                await tg.start(self._host_runtime, rt)
            loops = (self._control_loop, self._heartbeat_loop, self._wake_loop, self.finished.run)
            for loop in loops:
                tg.start_soon(loop)
            if self.scheduler is not None:
                tg.start_soon(self.scheduler.run)
            self.started.set()
            log.info("worker.started", consumer=self.consumer)
            await self.stop_requested.wait()
            with anyio.CancelScope(shield=True):
                await self._shutdown()
            tg.cancel_scope.cancel()
        await self._close()
        log.info("worker.stopped", consumer=self.consumer)

    def request_stop(self) -> None:
        self.stop_requested.set()

    async def _signal_loop(self) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                if self.stop_requested.is_set():
                    log.warning("worker.forced_exit", signal=signum.name)
                    self._force.set()
                    return
                log.info("worker.stopping", signal=signum.name,
                         grace_s=self.settings.shutdown_grace_s)  # fmt: skip
                self.stop_requested.set()

    async def _shutdown(self) -> None:
        """Graceful stop: finish within the grace, hand back the rest, settle."""
        self.runtimes.extend(self.draining)  # processors switched off but still draining
        for rt in self.runtimes:
            rt.stop_reading()
        async with anyio.create_task_group() as tg:

            async def until_idle() -> None:
                with anyio.move_on_after(self.settings.shutdown_grace_s):
                    for rt in self.runtimes:
                        await rt.wait_idle()
                tg.cancel_scope.cancel()

            async def until_forced() -> None:
                await self._force.wait()
                tg.cancel_scope.cancel()

            tg.start_soon(until_idle)
            tg.start_soon(until_forced)
        if self._force.is_set():
            return
        for rt in self.runtimes:
            rt.cancel_running()
        with anyio.move_on_after(5):
            for rt in self.runtimes:
                await rt.wait_idle()
        await self._leave()

    async def _leave(self) -> None:
        """Remove this consumer from the registry and, if empty, from the groups."""
        try:
            await self.redis.zrem(self.layout.globals.workers, self.consumer)
            await self.redis.hdel(self.layout.globals.partitions_acks, self.consumer)
            for rt in self.runtimes:
                for pk in rt.partitions:
                    await self.scripts.remove_consumer(pk, self.consumer)
        except REDIS_ERRORS as exc:
            log.warning("worker.leave_failed", error=type(exc).__name__)

    async def _close(self) -> None:
        for client in (self.blocking, self.redis):
            await client.aclose()  # type: ignore[no-untyped-call,unused-ignore]

    async def _claim_partitions(self) -> None:
        """Refuse to start when a queue's recorded partition count is not ours (exit 2)."""
        while True:
            try:
                await self.partition_records.claim(self.processors)
            except REDIS_ERRORS as exc:  # Redis down at start: keep trying (promise 1)
                self.health.failed(exc, "partitions")
                await self.health.backoff()
            else:
                self.health.ok("partitions")
                return

    # ------------------------------------------------------------------ loops

    async def _control_loop(self) -> None:
        while True:
            await guarded(self.health, "control", self.control_once)
            await anyio.sleep(POLL_INTERVAL_S)

    async def control_once(self) -> None:
        """Apply the pause flags and partition records, then acknowledge their epoch.

        The epoch is read first: a `repartition` marks its queue before raising it,
        so the flags read after it include that mark (partitions.py, acknowledgement).
        """
        epoch = await self.partition_records.epoch()
        paused = await self.control.paused_queues()
        paused |= await self.partition_records.held(self.processors)
        paused |= set(self.settings.paused_queues)
        for rt in self.runtimes:
            rt.set_paused(rt.queue in paused)
        if epoch != self._acked_epoch:
            await self.partition_records.acknowledge(self.consumer, epoch)
            self._acked_epoch = epoch
        await apply_cancels(self.redis, self.layout.globals.cancels, self.runtimes)

    async def _heartbeat_loop(self) -> None:
        while True:
            await guarded(self.health, "heartbeat", self.heartbeat_once)
            await anyio.sleep(HEARTBEAT_S)

    async def heartbeat_once(self) -> None:
        await heartbeat(self.redis, self.layout.globals.workers, self.consumer)

    async def _wake_loop(self) -> None:
        """Pub/Sub: a delayed job earlier than any known wakes its promoter now.

        Not on a cluster (the promoters then rely on their own timers and a 1 s poll).
        """
        if not self.settings.redis_cluster:
            await listen_for_wakeups(self.redis, self.runtimes, self.health)
