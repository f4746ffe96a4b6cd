"""The operator API in one object: every service the CLI, the admin API and the console call.

Built once per process over one connection, one `Live` settings reference, one `Layout` and
one `Scripts`: in a worker from its own parts (`of_worker`, so the console reads the
settings the worker reads and follows its reloads), in a CLI command or a test over a
connection of its own (`build`). The services are cheap and stateless between calls, so a
request uses the app's instance instead of building its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis

from tgworkers.engine.client import Client
from tgworkers.engine.layout import Layout
from tgworkers.engine.live import Live, live
from tgworkers.engine.ops.audit import AuditLog
from tgworkers.engine.ops.browse import QueueBrowser
from tgworkers.engine.ops.control import Control
from tgworkers.engine.ops.dlq import DeadLetters
from tgworkers.engine.ops.finished import FinishedJobs
from tgworkers.engine.ops.history import MinuteHistory
from tgworkers.engine.ops.job_actions import JobActions
from tgworkers.engine.ops.schedule_controls import ScheduleControls
from tgworkers.engine.ops.stats import ScheduleLedger, StatsReader
from tgworkers.engine.ops.workers_view import WorkersView
from tgworkers.engine.registry import Registry
from tgworkers.engine.settings import EngineSettings
from tgworkers.engine.wire.scripts import Scripts


class WorkerParts(Protocol):
    """What the operator API shares with a running worker (`runtime.worker.Worker`).

    Its connection, layout and scripts come with the client and `Control`.
    """

    @property
    def live(self) -> Live[EngineSettings]: ...
    @property
    def client(self) -> Client: ...
    @property
    def control(self) -> Control: ...
    @property
    def dead_letters(self) -> DeadLetters: ...


@dataclass(frozen=True, slots=True)
class EngineServices:
    """One instance of each operator service, sharing a connection, settings and layout."""

    live: Live[EngineSettings]
    registry: Registry
    layout: Layout
    client: Client
    control: Control
    dlq: DeadLetters
    stats: StatsReader
    schedules: ScheduleLedger
    audit: AuditLog
    browser: QueueBrowser
    history: MinuteHistory
    workers: WorkersView
    jobs: JobActions
    finished: FinishedJobs
    schedule_controls: ScheduleControls

    @property
    def settings(self) -> EngineSettings:
        """The settings in force now (a hot reload swaps them)."""
        return self.live.value

    @property
    def redis(self) -> Redis:
        """The services' one connection (pooled)."""
        return self.client.redis

    @classmethod
    def of_worker(cls, worker: WorkerParts) -> EngineServices:
        """The services over a running worker's own parts (its Client, Control, Layout…)."""
        return cls._around(worker.client, worker.control, worker.dead_letters, worker.live)

    @classmethod
    def build(
        cls, redis: Redis, registry: Registry, settings: EngineSettings | Live[EngineSettings]
    ) -> EngineServices:
        """Every service reads `settings` through one `Live`; the worker's follows reloads."""
        current = live(settings)
        layout = Layout(current)
        scripts = Scripts(redis)
        client = Client(redis, registry, current, layout=layout, scripts=scripts)
        control = Control(redis, registry, layout, scripts)
        return cls._around(client, control, DeadLetters(redis, registry, layout, scripts), current)

    @classmethod
    def _around(
        cls, client: Client, control: Control, dlq: DeadLetters, current: Live[EngineSettings]
    ) -> EngineServices:
        """The read and act services over the parts that own the connection and the scripts."""
        redis, registry, layout = client.redis, client.registry, control.layout
        scripts = control.scripts
        return cls(
            live=current, registry=registry, layout=layout, client=client, control=control,
            dlq=dlq, stats=StatsReader(redis, registry, layout),
            schedules=ScheduleLedger(redis, registry, current, client),
            audit=AuditLog(redis, layout.globals.audit, scripts),
            browser=QueueBrowser(redis, registry, layout),
            history=MinuteHistory(redis, layout.globals),
            workers=WorkersView(redis, registry, layout),
            jobs=JobActions(redis, registry, layout, scripts),
            finished=FinishedJobs(redis, registry, layout),
            schedule_controls=ScheduleControls(redis, registry, current, client),
        )  # fmt: skip
