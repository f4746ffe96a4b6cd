"""Schedule math, pure: parse a schedule value, compute ticks, decide misfires.

A schedule value is a 5-field cron expression (or an alias such as `@hourly`), a
6-field one with *seconds first* (`*/10 * * * * *`), or a plain number of seconds
(`30` = every 30 s). Ticks are absolute instants in Unix ms:

- seconds form: multiples of N seconds since the Unix epoch, whatever the time zone,
  so every replica computes the same ticks;
- cron forms: evaluated on the wall clock of `SCHEDULES_TZ` (default UTC).

DST policy (cron forms): a wall-clock time that does not exist (the spring-forward
gap) fires at the next valid instant, once; a wall-clock time that occurs twice (the
fall-back fold) fires once, at its first occurrence. Ticks are computed on naive
wall-clock times with croniter and then mapped to instants, so croniter's own DST
handling (pallets-eco/croniter#258, #28) never comes into play.

Misfire policy: after downtime the latest missed tick fires once when it is younger
than the grace (default: one period); older ones are skipped and counted, never a
burst. A tick at or before the last fired one never fires again, so a host clock
jumping back cannot fire a tick twice.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from croniter import croniter

from tgworkers.errors import ConfigError

_DST_WINDOW: Final = timedelta(hours=3)
_MAX_COUNT: Final = 100_000
_ALIASES: Final = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


class ScheduleSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A parsed schedule: either `every_ms` or a cron `expression` in `tz`."""

    value: str
    every_ms: int | None = None
    expression: str | None = None
    seconds_first: bool = False
    tz: str = "UTC"


class MisfirePlan(msgspec.Struct, frozen=True, kw_only=True):
    """What to do now: fire one tick (or none), how many were skipped, what is next."""

    fire_tick_ms: int | None
    skipped: int
    latest_tick_ms: int | None
    next_tick_ms: int


def parse_timezone(value: str) -> ZoneInfo:
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"SCHEDULES_TZ: unknown time zone {value!r}") from None


def parse_schedule(value: str, *, tz: str | ZoneInfo = "UTC", variable: str) -> ScheduleSpec:
    """Parse a schedule value; a bad one raises `ConfigError` naming `variable`."""
    text = value.strip()
    zone = tz.key if isinstance(tz, ZoneInfo) else parse_timezone(tz).key
    if text.isdigit():
        if int(text) <= 0:
            raise ConfigError(f"{variable}: a number of seconds must be positive, got {value!r}")
        return ScheduleSpec(value=text, every_ms=int(text) * 1000, tz=zone)
    if text in _ALIASES:  # @hourly, @daily, ...: croniter's names for 5-field expressions
        return ScheduleSpec(value=text, expression=_ALIASES[text], tz=zone)
    fields = text.split()
    seconds_first = len(fields) == 6  # noqa: PLR2004 - the 6-field form
    if len(fields) not in (5, 6) or not croniter.is_valid(text, second_at_beginning=seconds_first):
        raise ConfigError(
            f"{variable}: not a 5- or 6-field cron expression or a number of seconds: {value!r}"
        )
    return ScheduleSpec(value=text, expression=text, seconds_first=seconds_first, tz=zone)


def _instant_ms(naive: datetime, zone: ZoneInfo) -> int:
    """The instant of a wall-clock time: first occurrence in a fold, gap end in a gap."""
    aware = naive.replace(tzinfo=zone, fold=0)
    back = aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
    if back == naive:
        return int(aware.timestamp() * 1000)
    probe = naive.replace(second=0, microsecond=0)
    for _ in range(24 * 60):  # a gap: the first wall-clock minute that exists
        probe += timedelta(minutes=1)
        aware = probe.replace(tzinfo=zone, fold=0)
        if aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == probe:
            return int(aware.timestamp() * 1000)
    return int(naive.replace(tzinfo=zone).timestamp() * 1000)  # pragma: no cover


def _near_transition(at_ms: int, zone: ZoneInfo) -> bool:
    at = datetime.fromtimestamp(at_ms / 1000, UTC)
    offsets = {(at + timedelta(hours=h)).astimezone(zone).utcoffset() for h in (-26, 0, 26)}
    return len(offsets) > 1


def _naive_local(at_ms: int, zone: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(at_ms / 1000, UTC).astimezone(zone).replace(tzinfo=None)


def _iterator(spec: ScheduleSpec, start: datetime, *, backwards: bool = False) -> croniter:
    assert spec.expression is not None  # noqa: S101
    return croniter(
        spec.expression, start, ret_type=datetime,  # type: ignore[arg-type]
        second_at_beginning=spec.seconds_first, is_prev=backwards,
    )  # fmt: skip


def next_tick_ms(spec: ScheduleSpec, after_ms: int) -> int:
    """The first tick strictly after `after_ms`."""
    if spec.every_ms is not None:
        return (after_ms // spec.every_ms + 1) * spec.every_ms
    zone = ZoneInfo(spec.tz)
    start = _naive_local(after_ms, zone)
    if _near_transition(after_ms, zone):
        start -= _DST_WINDOW
    it = _iterator(spec, start)
    while True:
        tick = _instant_ms(it.get_next(datetime), zone)
        if tick > after_ms:
            return tick


def prev_tick_ms(spec: ScheduleSpec, at_or_before_ms: int) -> int:
    """The latest tick at or before `at_or_before_ms`."""
    if spec.every_ms is not None:
        return (at_or_before_ms // spec.every_ms) * spec.every_ms
    zone = ZoneInfo(spec.tz)
    start = _naive_local(at_or_before_ms, zone) + timedelta(seconds=1)
    if _near_transition(at_or_before_ms, zone):
        start += _DST_WINDOW
    it = _iterator(spec, start, backwards=True)
    while True:
        tick = _instant_ms(it.get_prev(datetime), zone)
        if tick <= at_or_before_ms:
            return tick


def period_ms(spec: ScheduleSpec, around_ms: int) -> int:
    """The gap between the tick at or before `around_ms` and the next one."""
    if spec.every_ms is not None:
        return spec.every_ms
    prev = prev_tick_ms(spec, around_ms)
    return next_tick_ms(spec, prev) - prev


def count_ticks(spec: ScheduleSpec, after_ms: int, until_ms: int) -> int:
    """How many ticks lie in (after_ms, until_ms], capped at 100,000."""
    if spec.every_ms is not None:
        return max(0, until_ms // spec.every_ms - after_ms // spec.every_ms)
    count, at = 0, after_ms
    while count < _MAX_COUNT:
        at = next_tick_ms(spec, at)
        if at > until_ms:
            break
        count += 1
    return count


def due_ticks(
    spec: ScheduleSpec, last_fired_ms: int | None, now_ms: int, grace_ms: int
) -> MisfirePlan:
    """Decide what to fire now (at most one tick) under the misfire policy.

    `last_fired_ms` is the last tick fired (or, for a schedule never fired, when it was
    first seen); None means first sight: nothing fires before the next tick.
    """
    nxt = next_tick_ms(spec, max(now_ms, last_fired_ms or now_ms))
    if last_fired_ms is None:
        return MisfirePlan(fire_tick_ms=None, skipped=0, latest_tick_ms=None, next_tick_ms=nxt)
    latest = prev_tick_ms(spec, now_ms)
    if latest <= last_fired_ms:
        return MisfirePlan(fire_tick_ms=None, skipped=0, latest_tick_ms=None, next_tick_ms=nxt)
    missed = count_ticks(spec, last_fired_ms, latest)  # includes `latest`
    if now_ms - latest <= grace_ms:
        return MisfirePlan(
            fire_tick_ms=latest, skipped=missed - 1, latest_tick_ms=latest, next_tick_ms=nxt
        )
    return MisfirePlan(fire_tick_ms=None, skipped=missed, latest_tick_ms=latest, next_tick_ms=nxt)


def tick_job_id(schedule_name: str, tick_ms: int) -> str:
    """The job id of one tick: `cron:{schedule}:{tick ms}` (unique enqueue = once)."""
    return f"cron:{schedule_name}:{tick_ms}"
