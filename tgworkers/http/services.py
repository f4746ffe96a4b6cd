"""The engine services the HTTP server calls, built once from a worker or a connection.

In a worker process they are the worker's own parts (`of_worker`), so the admin
API, the dashboard and the gauges read the settings the worker reads; the CLI
builds them over a connection of its own (`build`).
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from tgworkers.engine.client import Client
from tgworkers.engine.layout import Layout
from tgworkers.engine.live import Live, live
from tgworkers.engine.ops.audit import AuditLog
from tgworkers.engine.ops.control import Control
from tgworkers.engine.ops.dlq import DeadLetters
from tgworkers.engine.ops.stats import ScheduleLedger, StatsReader
from tgworkers.engine.registry import Registry
from tgworkers.engine.runtime.worker import Worker
from tgworkers.engine.settings import EngineSettings
from tgworkers.engine.wire.scripts import Scripts


@dataclass(frozen=True, slots=True)
class EngineServices:
    """One instance of each operation service; the CLI builds the same ones."""

    live: Live[EngineSettings]
    registry: Registry
    client: Client
    control: Control
    dlq: DeadLetters
    stats: StatsReader
    schedules: ScheduleLedger
    audit: AuditLog

    @property
    def settings(self) -> EngineSettings:
        """The settings in force now (a hot reload swaps them)."""
        return self.live.value

    @classmethod
    def of_worker(cls, worker: Worker) -> EngineServices:
        """The services over a running worker's own parts (its Client, Control, Layout…)."""
        layout = worker.layout
        return cls(
            live=worker.live,
            registry=worker.registry,
            client=worker.client,
            control=worker.control,
            dlq=worker.dead_letters,
            stats=StatsReader(worker.redis, worker.registry, layout),
            schedules=ScheduleLedger(worker.redis, worker.registry, worker.live, worker.client),
            audit=AuditLog(worker.redis, layout.globals.audit),
        )

    @classmethod
    def build(
        cls, redis: Redis, registry: Registry, settings: EngineSettings | Live[EngineSettings]
    ) -> EngineServices:
        """Every service reads `settings` through one `Live`; the worker's follows reloads."""
        current = live(settings)
        layout = Layout(current)
        scripts = Scripts(redis)
        client = Client(redis, registry, current, layout=layout, scripts=scripts)
        return cls(
            live=current, registry=registry, client=client,
            control=Control(redis, registry, layout, scripts),
            dlq=DeadLetters(redis, registry, layout, scripts),
            stats=StatsReader(redis, registry, layout),
            schedules=ScheduleLedger(redis, registry, current, client),
            audit=AuditLog(redis, layout.globals.audit, scripts),
        )  # fmt: skip
