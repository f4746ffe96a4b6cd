"""An operator's controls of one schedule: pause, resume, run now; its next ticks.

A paused schedule is a field of one hash (`GlobalKeys.schedules_paused`, name ->
JSON `{by, at}`) that the scheduler reads once per pass: each tick that comes due
while the schedule is paused is recorded as skipped (`skipped: schedule paused`),
not enqueued, so resuming fires the next tick on time and never a backlog. The
flag lives in Redis, so it holds for every replica and survives restarts and a
reload that leaves the schedule's `CRON_*` as it was.

"Run now" enqueues the schedule's job with its payload at once under its own id
(`cron:<name>:now:<ms>`), whatever the pause flag and the overlap policy say: an
operator asked for it. It does not move the schedule's own ticks.
"""

from __future__ import annotations

import time

import msgspec
from redis.asyncio import Redis

from tgworkers.engine.client import Client
from tgworkers.engine.live import Live, live
from tgworkers.engine.registry import Registry
from tgworkers.engine.schedule.scheduler import ActiveSchedule, Paused, build_schedules
from tgworkers.engine.settings import EngineSettings
from tgworkers.engine.wire.keys import GlobalKeys
from tgworkers.errors import InputError

_encoder = msgspec.json.Encoder()


class ScheduleNotFoundError(InputError):
    """No schedule by that name among the declared ones (404)."""


class ScheduleState(msgspec.Struct, frozen=True, kw_only=True, rename="camel", omit_defaults=True):
    """What a schedule control did: `{"name", "paused", "by"?, "jobId"?, "created"?}`."""

    name: str
    paused: bool
    by: str | None = None
    job_id: str | None = None
    created: bool | None = None


class ScheduleControls:
    """Pause, resume and run-now of one declared schedule."""

    def __init__(
        self,
        redis: Redis,
        registry: Registry,
        settings: EngineSettings | Live[EngineSettings],
        client: Client,
    ) -> None:
        self.redis = redis
        self.registry = registry
        self.live = live(settings)
        self.client = client

    @property
    def key(self) -> str:
        return GlobalKeys(self.live.value.queue_prefix).schedules_paused

    def find(self, name: str) -> ActiveSchedule:
        declared = build_schedules(list(self.registry.processors.values()), self.live.value)
        for sched in declared:
            if sched.name == name:
                return sched
        known = ", ".join(sorted(s.name for s in declared)) or "none"
        raise ScheduleNotFoundError(f"no schedule {name!r}; known: {known}")

    async def pause(self, name: str, *, by: str) -> ScheduleState:
        self.find(name)
        await self.redis.hset(self.key, name, _encoder.encode(Paused(by, _now_ms())))
        return ScheduleState(name=name, paused=True, by=by)

    async def resume(self, name: str) -> ScheduleState:
        self.find(name)
        await self.redis.hdel(self.key, name)
        return ScheduleState(name=name, paused=False)

    async def run_now(self, name: str, *, by: str) -> ScheduleState:
        sched = self.find(name)
        job_id = f"cron:{name}:now:{_now_ms()}"
        result = await self.client.enqueue(
            sched.job, sched.payload, id=job_id, origin=f"schedule:{name}:run-now:{by}"
        )
        paused = await self.redis.hexists(self.key, name)
        return ScheduleState(
            name=name, paused=bool(paused), by=by, job_id=result.id, created=result.created
        )


def _now_ms() -> int:
    return int(time.time() * 1000)
