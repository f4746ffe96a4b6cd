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
from collections.abc import Sequence

import anyio
import structlog
from anyio.abc import TaskGroup

from tgworkers.engine.context import Resources
from tgworkers.engine.live import Live
from tgworkers.engine.ops.control import POLL_INTERVAL_S
from tgworkers.engine.registry import Processor, Registry
from tgworkers.engine.runtime.assembly import (
    Connections,
    EngineParts,
    concurrency_of,
    open_connections,
)
from tgworkers.engine.runtime.cancels import apply_cancels
from tgworkers.engine.runtime.executor import Clock
from tgworkers.engine.runtime.processor import ProcessorRuntime
from tgworkers.engine.runtime.upkeep import check_eviction_policy, heartbeat, listen_for_wakeups
from tgworkers.engine.schedule.scheduler import Scheduler, build_schedules
from tgworkers.engine.settings import EngineSettings
from tgworkers.engine.wire.connection import REDIS_ERRORS, guarded
from tgworkers.engine.wire.keys import HEARTBEAT_S

log = structlog.get_logger("tgworkers.worker")


__all__ = ["Connections", "Worker", "open_connections"]


class Worker:
    """Runs the selected processors of one process until told to stop."""

    def __init__(  # noqa: PLR0913 - parts the launcher or an engine test passes in
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
        conns = connections or open_connections(settings, registry)  # the launcher passes them
        parts = self.parts = EngineParts.build(  # engine/runtime/assembly.py
            self.live, registry, conns, consumer, self.resources, clock
        )
        self.redis, self.blocking, self.health = parts.redis, parts.blocking, parts.health
        self.layout, self.scripts, self.client = parts.layout, parts.scripts, parts.client
        self.control, self.dead_letters = parts.control, parts.dead_letters
        self.partition_records, self.broker = parts.partition_records, parts.broker
        self.rates, self.finished = parts.rates, parts.finished
        self.runtimes = [parts.runtime(p, self.is_alive) for p in self.processors]
        self.scheduler: Scheduler | None = None
        if schedules := build_schedules(self.processors, settings):
            self.scheduler = parts.scheduler(schedules)
        self.started = anyio.Event()
        self.stop_requested = anyio.Event()
        self._force = anyio.Event()
        self.resources.add(self.client)
        self.resources.add(self.dead_letters)
        self.draining: list[ProcessorRuntime] = []
        self._tg: TaskGroup | None = None
        self._stops: dict[ProcessorRuntime, anyio.Event] = {}
        self._acked_epoch = -1

    @property
    def settings(self) -> EngineSettings:
        """The engine's part of the settings in force (a reload swaps them: `follow`)."""
        return self.live.value

    async def follow(self, new: EngineSettings, processors: Sequence[Processor]) -> dict[str, str]:
        """A hot reload: swap the one `Live`, then bring what holds settings-derived state in line.

        Every reader of the settings reads through `self.live`; what keeps state built
        from them follows here, in one place: the processors switched on and off, each
        runtime's concurrency, the pause flags (at once, not at the next control poll)
        and the schedules. Returns the processors switched (`{queue: "on"|"off"}`).
        """
        old, self.live.value = self.settings, new
        switched = await self._switch_processors(processors)
        for rt in self.runtimes:
            if (wanted := concurrency_of(new, rt.processor)) != concurrency_of(old, rt.processor):
                rt.set_concurrency(wanted)
        await self.control_once()
        self._reschedule()
        return switched

    async def _switch_processors(self, processors: Sequence[Processor]) -> dict[str, str]:
        """Start the processors switched on and drain the ones switched off."""
        wanted = {p.name for p in processors}
        running = {rt.queue for rt in self.runtimes}
        switched: dict[str, str] = {}
        for queue in sorted(running - wanted):
            self.remove_runtime(queue)
            switched[queue] = "off"
        for proc in processors:
            if proc.name not in running:
                await self.add_runtime(proc)
                switched[proc.name] = "on"
        return switched

    def _reschedule(self) -> None:
        """Schedules follow `CRON_*`, `SCHEDULES_TZ` and processors switched (`follow`).

        Applied without a restart; a scheduler is started if there was none.
        """
        schedules = build_schedules(self.processors, self.settings)
        if self.scheduler is None:
            if schedules and self._tg is not None:
                self.scheduler = self.parts.scheduler(schedules)
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
        rt = self.parts.runtime(proc, self.is_alive)
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
