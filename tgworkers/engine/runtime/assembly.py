"""The engine's own parts of one worker, built once and shared: the worker only runs them.

A process is assembled by the launcher (`tgworkers.bootstrap.launcher`): it opens
the connections here and builds the `Worker`, whose constructor calls `EngineParts.build`
once. Every part reads the settings through the worker's one `Live`, and shares one
`Layout` and one `Scripts`, so a hot reload reaches all of them with one swap and a
`NOSCRIPT` after a Redis restart is handled in one place.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from redis.asyncio import Redis

from tgworkers.engine.client import Client
from tgworkers.engine.context import Resources
from tgworkers.engine.layout import Layout
from tgworkers.engine.live import Live
from tgworkers.engine.ops.control import Control
from tgworkers.engine.ops.dlq import DeadLetters
from tgworkers.engine.ops.rates import RateLimiter
from tgworkers.engine.options import RuntimeOptions, check_cleanup_budgets
from tgworkers.engine.partitions import PartitionRecords
from tgworkers.engine.registry import JobType, Processor, Registry
from tgworkers.engine.runtime.broker import Broker
from tgworkers.engine.runtime.executor import Clock, Executor
from tgworkers.engine.runtime.finished_log import FinishedLog
from tgworkers.engine.runtime.processor import ProcessorRuntime
from tgworkers.engine.schedule.scheduler import ActiveSchedule, Scheduler
from tgworkers.engine.settings import EngineSettings
from tgworkers.engine.telemetry.recorder import active as active_telemetry
from tgworkers.engine.wire.connection import RedisHealth, connect, connect_for_blocking
from tgworkers.engine.wire.scripts import Scripts


class Connections(NamedTuple):
    """A worker's two clients: short commands and scripts, and the blocking reads."""

    redis: Redis
    blocking: Redis


def open_connections(settings: EngineSettings, registry: Registry) -> Connections:
    """The clients of one worker process, sized for the processors it may ever run.

    Opened by the launcher and handed to the worker; a worker built without them
    (engine tests) opens its own the same way.
    """
    url, cluster = settings.redis_url.reveal(), settings.redis_cluster
    readers = max(4, len(registry.processors) + 1)  # one per processor that may run
    if cluster:  # one reader per partition: one XREADGROUP cannot span slots
        counts = [Layout(settings).partition_count(p) for p in registry.processors.values()]
        readers = max(readers, sum(counts) + 1)
    blocking = connect_for_blocking(url, block_ms=1000, max_connections=readers, cluster=cluster)
    return Connections(connect(url, cluster=cluster), blocking)


def concurrency_of(settings: EngineSettings, proc: Processor) -> int:
    """`CONCURRENCY_<P>` when set, else the processor's own."""
    return settings.processor_overrides(proc.env_name).concurrency or proc.concurrency


@dataclass(frozen=True, slots=True)
class EngineParts:
    """The parts every runtime of one worker shares, each built once.

    It also builds the runtimes and the scheduler, so a processor switched on by a
    reload is built exactly like one present at start.
    """

    live: Live[EngineSettings]
    consumer: str
    resources: Resources
    clock: Clock
    redis: Redis
    blocking: Redis
    health: RedisHealth
    layout: Layout
    scripts: Scripts
    client: Client
    control: Control
    dead_letters: DeadLetters
    partition_records: PartitionRecords
    broker: Broker
    rates: RateLimiter
    finished: FinishedLog

    @classmethod
    def build(
        cls,
        live: Live[EngineSettings],
        registry: Registry,
        connections: Connections,
        consumer: str,
        resources: Resources,
        clock: Clock,
    ) -> EngineParts:
        """One Layout and one Scripts handed to the Client, Control and DeadLetters."""
        redis = connections.redis
        health = RedisHealth()
        active_telemetry().track_health(health)  # error counts per kind, exported
        layout, scripts = Layout(live), Scripts(redis)
        return cls(
            live=live, consumer=consumer, resources=resources, clock=clock, redis=redis,
            blocking=connections.blocking, health=health, layout=layout, scripts=scripts,
            client=Client(redis, registry, live, layout=layout, scripts=scripts),
            control=Control(redis, registry, layout, scripts),
            dead_letters=DeadLetters(redis, registry, layout, scripts),
            partition_records=PartitionRecords(redis, layout),
            broker=Broker(redis, connections.blocking, consumer),
            rates=RateLimiter(redis, live, scripts),  # the peers take its peer gate too
            finished=FinishedLog(redis, live, consumer, health, scripts),
        )  # fmt: skip

    def runtime(
        self, proc: Processor, is_alive: Callable[[str], Awaitable[bool]]
    ) -> ProcessorRuntime:
        """One processor's runtime.

        Its executor reads the retry policy and timeout through the `Live` on every
        attempt, so a reload reaches the next one.
        """
        live, s = self.live, self.live.value
        check_cleanup_budgets(proc.job_types, s.visibility_timeout_ms)  # before anything runs

        def policy_of(jt: JobType[Any]) -> Any:
            return jt.retry or live.value.retry_policy(proc.env_name)

        def timeout_of(jt: JobType[Any]) -> float:
            return live.value.processor_overrides(proc.env_name).timeout_s or jt.timeout_s

        executor = Executor(
            queue=proc.queue, policy_of=policy_of, timeout_of=timeout_of,
            max_payload_bytes=s.max_payload_bytes, resources=self.resources,
            client=self.client, redis=self.redis, scripts=self.scripts, consumer=self.consumer,
            clock=self.clock,
        )  # fmt: skip
        executor.rate = self.rates.queue_gate(proc.queue, proc.env_name)
        options = RuntimeOptions(
            concurrency=concurrency_of(s, proc),
            visibility_timeout_ms=s.visibility_timeout_ms,
            max_deliveries=s.max_deliveries_effective,
            dedupe_ttl_ms=s.dedupe_ttl_s * 1000,
            read_per_partition=s.redis_cluster,
        )
        rt = ProcessorRuntime(
            processor=proc, partitions=self.layout.partitions(proc), broker=self.broker,
            scripts=self.scripts, executor=executor, options=options, health=self.health,
            is_alive=is_alive,
        )  # fmt: skip
        rt.observers.append(self.finished.observe)  # finish records for lookup (finished.py)
        return rt

    def scheduler(self, schedules: list[ActiveSchedule]) -> Scheduler:
        return Scheduler(
            redis=self.redis, client=self.client, schedules=schedules,
            prefix=self.live.value.queue_prefix, health=self.health, clock=self.clock,
        )  # fmt: skip
