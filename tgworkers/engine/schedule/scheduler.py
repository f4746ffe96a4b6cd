"""The scheduler: each cron tick's job is enqueued exactly once, by any replica.

Every `run` process that serves a scheduled processor runs this loop; there is no
leader that could stall the schedule when its process dies. A tick's job id is
derived from (schedule, tick time), and enqueueing is unique by id, so replicas
that fire the same tick at the same moment collapse onto one job (promise 8).

Ticks come from the schedule itself (croniter or epoch multiples, `cron.py`), not
from loop wake-ups, so they do not drift. The loop sleeps until the earliest next
tick of any schedule and wakes early when schedules are replaced (hot reload).

The ledger (`{prefix}:schedules`, one JSON record per schedule) keeps the
expression, next and last fire time, last job id and last outcome; it is also what
lets a replica that was down decide about missed ticks (misfire policy in cron.py)
and what keeps a clock jumping back from firing a tick twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Final

import anyio
import msgspec
import structlog
from redis.asyncio import Redis

from tgworkers.engine.client import Client
from tgworkers.engine.registry import Processor
from tgworkers.engine.schedule import cron
from tgworkers.engine.settings import EngineSettings
from tgworkers.engine.telemetry.recorder import active as active_telemetry
from tgworkers.engine.wire.connection import RedisHealth, guarded
from tgworkers.engine.wire.keys import GlobalKeys
from tgworkers.engine.wire.replies import text

log = structlog.get_logger("tgworkers.scheduler")

MAX_SLEEP_S: Final = 30.0


class ActiveSchedule(msgspec.Struct, frozen=True, kw_only=True):
    """One schedule as the loop runs it: its parsed expression and policy."""

    name: str
    job: str
    expression: str
    spec: Any
    payload: dict[str, Any]
    overlap: str
    misfire_grace_ms: int | None


class ScheduleRecord(msgspec.Struct, kw_only=True, rename="camel"):
    """One schedule's record: the `schedules --json` item, the dashboard row, the ledger entry.

    camelCase on the wire: `nextAt`, `lastAt`, `lastOutcome`, `lastJobId`.
    """

    name: str
    expression: str = ""
    job: str = ""
    next_at: int | None = None
    last_at: int | None = None
    last_outcome: str | None = None
    last_job_id: str | None = None


class LedgerRecord(ScheduleRecord, kw_only=True, rename="camel"):
    """The ledger's entry: the record plus `seenAt`, when a replica first saw it.

    `seenAt` is the misfire baseline before the first tick; it is not shown.
    """

    seen_at: int | None = None


class ScheduleView(ScheduleRecord, kw_only=True, rename="camel"):
    """A `schedules --json` item: the record plus `paused`, `pausedBy` and `nextTicks`."""

    paused: bool = False
    paused_by: str | None = None
    next_ticks: list[int] = msgspec.field(default_factory=list)
    """The next `NEXT_TICKS` fire times (ms), computed now; a paused schedule skips them."""


class Paused(msgspec.Struct, frozen=True):
    """One paused schedule (`GlobalKeys.schedules_paused`): who paused it, and when (ms)."""

    by: str
    at: int


class SchedulesDocument(msgspec.Struct, frozen=True, kw_only=True):
    """`schedules --json` and `GET /admin/v1/schedules`."""

    schedules: list[ScheduleView]


NEXT_TICKS: Final = 5
"""How many upcoming ticks `schedules` shows."""
_paused_decoder = msgspec.json.Decoder(Paused)


def next_ticks(spec: Any, after_ms: int, count: int = NEXT_TICKS) -> list[int]:
    """The next `count` ticks strictly after `after_ms`."""
    ticks: list[int] = []
    at = after_ms
    for _ in range(count):
        at = cron.next_tick_ms(spec, at)
        ticks.append(at)
    return ticks


async def paused_schedules(redis: Redis, prefix: str) -> dict[str, Paused]:
    """Every paused schedule (one HGETALL); an unreadable record still counts as paused."""
    raw: Any = await redis.hgetall(GlobalKeys(prefix).schedules_paused)
    out: dict[str, Paused] = {}
    for name, value in raw.items():
        key = text(name)
        try:
            out[key] = _paused_decoder.decode(value)
        except msgspec.DecodeError:
            out[key] = Paused("?", 0)
    return out


_ledger_decoder = msgspec.json.Decoder(LedgerRecord)
_encoder = msgspec.json.Encoder()


def build_schedules(
    processors: Sequence[Processor], settings: EngineSettings
) -> list[ActiveSchedule]:
    """The schedules of the given processors, `CRON_*` overriding each default.

    Raises:
        ConfigError: one line naming the variable of a malformed expression.
    """
    out: list[ActiveSchedule] = []
    for proc in processors:
        for s in proc.schedules:
            expression = settings.crons.get(s.env, s.default) if s.env else s.default
            variable = s.env or f"schedule {s.schedule_name}"
            spec = cron.parse_schedule(expression, tz=settings.schedules_tz, variable=variable)
            out.append(
                ActiveSchedule(
                    name=s.schedule_name, job=s.job, expression=expression, spec=spec,
                    payload=dict(s.payload), overlap=s.overlap, misfire_grace_ms=s.misfire_grace_ms,
                )
            )  # fmt: skip
    return out


class Scheduler:
    """Fires the ticks of the active schedules (see the module docstring)."""

    def __init__(
        self,
        *,
        redis: Redis,
        client: Client,
        schedules: list[ActiveSchedule],
        prefix: str,
        health: RedisHealth | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.client = client
        self.schedules = schedules
        self.key = GlobalKeys(prefix).schedules
        self.paused_key = GlobalKeys(prefix).schedules_paused
        self.health = health or RedisHealth()
        self.clock = clock
        self.counters: dict[str, int] = {"fired": 0, "skipped": 0, "misfired": 0}
        self.fire_listeners: list[Callable[[str, int], None]] = []
        self._wake = anyio.Event()
        self._pass_lock = anyio.Lock()
        self.first_pass = anyio.Event()
        """Set once the schedules have been seen: `seen_at` is recorded on the clock of then."""
        self._paused: frozenset[str] = frozenset()
        """Schedules an operator paused, read once per pass (`schedule_controls.py`)."""
        active_telemetry().track_scheduler(self)  # fires, lag and skips metrics

    def replace(self, schedules: list[ActiveSchedule]) -> None:
        """Swap the schedules (hot reload); the loop picks them up at once."""
        self.schedules = schedules
        self._wake.set()

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    async def run(self) -> None:
        while True:
            sleep_s = await guarded(self.health, "scheduler", self.tick_once)
            if sleep_s is None:
                sleep_s = 1.0
            with anyio.move_on_after(sleep_s):
                await self._wake.wait()
            self._wake = anyio.Event()

    async def tick_once(self) -> float:
        """Fire what is due now; returns seconds until the next tick of any schedule.

        Passes never interleave: a pass reads the ledger, decides and writes it back, so a
        second pass started meanwhile (the loop and the test harness's `advance`) would
        decide on a ledger the first has not written yet.
        """
        async with self._pass_lock:
            wait_s = await self._pass()
        self.first_pass.set()
        return wait_s

    async def _pass(self) -> float:
        now = self.now_ms()
        records = await self.read_ledger()
        names: Any = await self.redis.hkeys(self.paused_key)
        self._paused = frozenset(text(n) for n in names)
        soonest: int | None = None
        for sched in list(self.schedules):
            record = records.get(sched.name) or LedgerRecord(
                name=sched.name, expression=sched.expression, job=sched.job, seen_at=now
            )
            nxt = await self._handle(sched, record, now)
            soonest = nxt if soonest is None else min(soonest, nxt)
        if soonest is None:
            return MAX_SLEEP_S
        return min(max(soonest - self.now_ms(), 0) / 1000, MAX_SLEEP_S)

    async def _handle(self, sched: ActiveSchedule, record: LedgerRecord, now: int) -> int:
        grace = sched.misfire_grace_ms or cron.period_ms(sched.spec, now)
        last = record.last_at if record.last_at is not None else record.seen_at
        plan = cron.due_ticks(sched.spec, last, now, grace)
        if plan.skipped:
            self.counters["misfired"] += plan.skipped
            log.warning(
                "schedule.ticks_skipped",
                schedule=sched.name,
                count=plan.skipped,
                count_capped=plan.skipped_capped,
                reason="older than the misfire grace",
            )
        record.expression, record.job, record.next_at = (
            sched.expression,
            sched.job,
            plan.next_tick_ms,
        )
        if plan.fire_tick_ms is not None:
            await self._fire(sched, record, plan.fire_tick_ms)
        elif plan.latest_tick_ms is not None:  # all missed ticks too old: remember the skip
            record.last_at = plan.latest_tick_ms
            record.last_outcome = f"skipped: {plan.skipped} missed ticks older than the grace"
        await self.redis.hset(self.key, sched.name, _encoder.encode(record))
        return plan.next_tick_ms

    async def _fire(self, sched: ActiveSchedule, record: LedgerRecord, tick_ms: int) -> None:
        job_id = cron.tick_job_id(sched.name, tick_ms)
        if sched.name in self._paused:
            self.counters["skipped"] += 1
            record.last_at, record.last_outcome = tick_ms, "skipped: schedule paused"
            log.info("schedule.tick_skipped", schedule=sched.name, tick_ms=tick_ms,
                     reason="paused")  # fmt: skip
            return
        if (
            sched.overlap == "skip"
            and record.last_job_id
            and await self._live(sched, record.last_job_id)
        ):
            self.counters["skipped"] += 1
            record.last_at, record.last_outcome = tick_ms, "skipped: previous run still live"
            log.info("schedule.tick_skipped", schedule=sched.name, tick_ms=tick_ms,
                     previous=record.last_job_id, reason="overlap")  # fmt: skip
            return
        result = await self.client.enqueue(
            sched.job, sched.payload, id=job_id, origin=f"schedule:{sched.name}"
        )
        record.last_at, record.last_job_id, record.last_outcome = tick_ms, job_id, "enqueued"
        if result.created:
            self.counters["fired"] += 1
            log.info("schedule.fired", schedule=sched.name, tick_ms=tick_ms, job_id=job_id,
                     lag_ms=self.now_ms() - tick_ms)  # fmt: skip
            for listener in self.fire_listeners:
                listener(sched.name, tick_ms)

    async def _live(self, sched: ActiveSchedule, job_id: str) -> bool:
        state = await self.client.state(sched.job, job_id, sched.payload)
        return state in ("ready", "delayed")

    async def read_ledger(self) -> dict[str, LedgerRecord]:
        raw: dict[bytes, bytes] = await self.redis.hgetall(self.key)  # type: ignore[assignment]
        out: dict[str, LedgerRecord] = {}
        for name, value in raw.items():
            try:
                out[name.decode()] = _ledger_decoder.decode(value)
            except msgspec.DecodeError:
                log.warning("schedule.ledger_unreadable", schedule=name.decode())
        return out


async def schedules_document(
    redis: Redis, client: Client, schedules: Sequence[ActiveSchedule], prefix: str
) -> SchedulesDocument:
    """`schedules --json`: each schedule with its next and last fire and outcome."""
    raw: dict[bytes, bytes] = await redis.hgetall(GlobalKeys(prefix).schedules)  # type: ignore[assignment]
    ledger = {k.decode(): _ledger_decoder.decode(v) for k, v in raw.items()}
    paused = await paused_schedules(redis, prefix)
    now = int(time.time() * 1000)
    items: list[ScheduleView] = []
    for sched in schedules:
        rec = ledger.get(sched.name)
        outcome = rec.last_outcome if rec else None
        if rec and rec.last_job_id and outcome == "enqueued":
            outcome = await client.state(sched.job, rec.last_job_id, sched.payload) or "done"
        ticks = next_ticks(sched.spec, now)
        who = paused.get(sched.name)
        items.append(
            ScheduleView(
                name=sched.name,
                expression=sched.expression,
                job=sched.job,
                next_at=ticks[0],
                last_at=rec.last_at if rec else None,
                last_outcome=outcome,
                last_job_id=rec.last_job_id if rec else None,
                paused=who is not None,
                paused_by=who.by if who is not None else None,
                next_ticks=ticks,
            )
        )
    return SchedulesDocument(schedules=items)
