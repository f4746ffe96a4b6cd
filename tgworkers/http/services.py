"""The engine services the HTTP server calls, built once from a worker or a client."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from tgworkers.config import Settings
from tgworkers.engine.audit import AuditLog
from tgworkers.engine.client import Client
from tgworkers.engine.control import Control
from tgworkers.engine.dlq import DeadLetters
from tgworkers.engine.layout import Layout
from tgworkers.engine.registry import Registry
from tgworkers.engine.stats import ScheduleLedger, StatsReader


@dataclass(frozen=True, slots=True)
class EngineServices:
    """One instance of each operation service; the CLI builds the same ones."""

    settings: Settings
    registry: Registry
    client: Client
    control: Control
    dlq: DeadLetters
    stats: StatsReader
    schedules: ScheduleLedger
    audit: AuditLog

    @classmethod
    def build(cls, redis: Redis, registry: Registry, settings: Settings) -> EngineServices:
        layout = Layout(settings)
        client = Client(redis, registry, settings)
        return cls(
            settings=settings, registry=registry, client=client,
            control=Control(redis, registry, layout), dlq=DeadLetters(redis, registry, layout),
            stats=StatsReader(redis, registry, layout),
            schedules=ScheduleLedger(redis, registry, settings, client),
            audit=AuditLog(redis, layout.globals.audit),
        )  # fmt: skip
