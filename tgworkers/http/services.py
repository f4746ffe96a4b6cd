"""The engine services the HTTP server calls, built once from a worker or a client."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from tgworkers.config import Settings
from tgworkers.engine.client import Client
from tgworkers.engine.control import Control
from tgworkers.engine.dlq import DeadLetters
from tgworkers.engine.layout import Layout
from tgworkers.engine.live import Live, live
from tgworkers.engine.registry import Registry
from tgworkers.engine.stats import ScheduleLedger, StatsReader


@dataclass(frozen=True, slots=True)
class EngineServices:
    """One instance of each operation service; the CLI builds the same ones."""

    live: Live[Settings]
    registry: Registry
    client: Client
    control: Control
    dlq: DeadLetters
    stats: StatsReader
    schedules: ScheduleLedger

    @property
    def settings(self) -> Settings:
        """The settings in force now (a hot reload swaps them)."""
        return self.live.value

    @classmethod
    def build(
        cls, redis: Redis, registry: Registry, settings: Settings | Live[Settings]
    ) -> EngineServices:
        """Every service reads `settings` through one `Live`; the worker's follows reloads."""
        current = live(settings)
        layout = Layout(current)
        client = Client(redis, registry, current)
        return cls(
            live=current, registry=registry, client=client,
            control=Control(redis, registry, layout), dlq=DeadLetters(redis, registry, layout),
            stats=StatsReader(redis, registry, layout),
            schedules=ScheduleLedger(redis, registry, current, client),
        )  # fmt: skip
