"""Schedule math, pure: parse a schedule value, compute ticks, decide misfires.

A schedule value is a 5-field cron expression (or an alias such as `@hourly`), a
6-field one with *seconds first* (`*/10 * * * * *`, croniter's `second_at_beginning`),
or a plain number of seconds (`30` = every 30 s). Ticks are absolute instants in
integer Unix ms:

- seconds form: multiples of N seconds since the Unix epoch, whatever the time zone,
  so every replica computes the same ticks;
- cron forms: evaluated on the wall clock of `SCHEDULES_TZ` (default UTC).

Random and hashed fields (croniter's `R`, `H`) are refused: replicas would draw
different ticks, and tick ids would no longer collapse onto one job.

DST policy (cron forms): a wall-clock time that does not exist (the spring-forward
gap) fires at the next valid instant, once; a wall-clock time that occurs twice (the
fall-back fold) fires once, at its first occurrence. Ticks are computed on naive
wall-clock times with croniter and then mapped to instants (fold=0; a gap maps to its
end), deduplicated, so croniter's own DST handling (pallets-eco/croniter#258, #28)
never comes into play.

Misfire policy: after downtime the latest missed tick fires once when it is younger
than the grace (default: one period); older ones are skipped and counted, never a
burst. A tick at or before the last fired one never fires again, so a host clock
jumping back cannot fire a tick twice.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from croniter import CroniterError, croniter

from tgworkers.errors import ConfigError

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS: Final = timedelta(milliseconds=1)
_DAY: Final = timedelta(days=1)
MAX_COUNTED: Final = 10_000  # bounds the work of counting skipped ticks after a long outage
_SIX_FIELDS: Final = 6
_RANDOM_OR_HASHED: Final = re.compile(r"(?:^|,)[rh](?:[(/,]|$)", re.IGNORECASE)
_ALIASES: Final = {  # croniter's names for 5-field expressions
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}  # fmt: skip


class ScheduleSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A parsed schedule: either `every_ms` or a cron `expression` in `tz`."""

    value: str
    every_ms: int | None = None
    expression: str | None = None
    seconds_first: bool = False
    tz: str = "UTC"


class MisfirePlan(msgspec.Struct, frozen=True, kw_only=True):
    """What to do now: fire one tick (or none), how many were skipped, what is next.

    `skipped` counts at most `MAX_COUNTED` ticks; `skipped_capped` says there were more.
    """

    fire_tick_ms: int | None
    skipped: int
    latest_tick_ms: int | None
    next_tick_ms: int
    skipped_capped: bool = False


def parse_timezone(value: str) -> ZoneInfo:
    """The zone named by `SCHEDULES_TZ`; an unknown name is a ConfigError naming it."""
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"SCHEDULES_TZ: unknown time zone {value!r}") from None


def parse_schedule(value: str, *, tz: str | ZoneInfo = "UTC", variable: str) -> ScheduleSpec:
    """Parse a schedule value; a bad one raises `ConfigError` in one line naming `variable`."""
    text = value.strip()
    zone = tz.key if isinstance(tz, ZoneInfo) else parse_timezone(tz).key
    if text.isascii() and text.isdigit():
        if int(text) <= 0:
            raise ConfigError(f"{variable}: a number of seconds must be positive, got {value!r}")
        return ScheduleSpec(value=text, every_ms=int(text) * 1000, tz=zone)
    fields = _ALIASES.get(text.lower(), text).split()
    seconds_first = len(fields) == _SIX_FIELDS
    expression = " ".join(fields)
    if any(_RANDOM_OR_HASHED.search(f) for f in fields):
        raise ConfigError(
            f"{variable}: random or hashed fields (R, H) differ between replicas: {value!r}"
        )
    if len(fields) not in (5, 6) or not croniter.is_valid(
        expression, second_at_beginning=seconds_first
    ):
        raise ConfigError(
            f"{variable}: not a 5- or 6-field cron expression or a number of seconds: {value!r}"
        )
    spec = ScheduleSpec(value=text, expression=expression, seconds_first=seconds_first, tz=zone)
    try:
        _iterator(spec, datetime(2000, 1, 1)).get_next(datetime)  # noqa: DTZ001 - wall clock
    except CroniterError:
        raise ConfigError(f"{variable}: the cron expression never fires: {value!r}") from None
    return spec


def _to_ms(aware: datetime) -> int:
    return (aware - _EPOCH) // _ONE_MS


def _naive_local(at_ms: int, zone: ZoneInfo) -> datetime:
    return (_EPOCH + at_ms * _ONE_MS).astimezone(zone).replace(tzinfo=None)


def _instant_ms(naive: datetime, zone: ZoneInfo) -> int:
    """The instant of a wall-clock time: its first occurrence in a fold, the gap's end in a gap."""
    first = naive.replace(tzinfo=zone, fold=0)
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == naive:
        return _to_ms(first)
    # a gap: fold=1 applies the later offset (an instant before the jump), fold=0 the earlier
    # one (after it); bisect on whole seconds for the first instant whose wall clock is later
    lo_s = _to_ms(naive.replace(tzinfo=zone, fold=1)) // 1000
    hi_s = _to_ms(first) // 1000
    while hi_s - lo_s > 1:
        mid_s = (lo_s + hi_s) // 2
        if _naive_local(mid_s * 1000, zone) > naive:
            hi_s = mid_s
        else:
            lo_s = mid_s
    return hi_s * 1000


def _iterator(spec: ScheduleSpec, start: datetime, *, backwards: bool = False) -> croniter:
    assert spec.expression is not None  # noqa: S101 - only cron forms get here
    return croniter(
        spec.expression, start, ret_type=datetime,  # type: ignore[arg-type]
        second_at_beginning=spec.seconds_first, is_prev=backwards,
    )  # fmt: skip


def _cron_ticks_after(spec: ScheduleSpec, after_ms: int) -> Iterator[int]:
    """Cron ticks strictly after `after_ms`, ascending, each instant once.

    The wall-to-instant mapping is monotonic, so no wall time at or before the wall clock
    of `after_ms` maps to a later instant; inside a fold's second pass, neither does any
    wall time the first pass showed, so the walk starts after them.
    """
    zone = ZoneInfo(spec.tz)
    start = _naive_local(after_ms, zone)
    fold_top = _fold_top_wall(after_ms, zone)
    if fold_top is not None:
        start = max(start, fold_top - timedelta(microseconds=1))
    it = _iterator(spec, start)
    last = after_ms
    while True:
        tick = _instant_ms(it.get_next(datetime), zone)
        if tick > last:  # ticks in a spring-forward gap all land on its end: once
            last = tick
            yield tick


def next_tick_ms(spec: ScheduleSpec, after_ms: int) -> int:
    """The first tick strictly after `after_ms`."""
    if spec.every_ms is not None:
        return (after_ms // spec.every_ms + 1) * spec.every_ms
    return next(_cron_ticks_after(spec, after_ms))


def prev_tick_ms(spec: ScheduleSpec, at_or_before_ms: int) -> int:
    """The latest tick at or before `at_or_before_ms`."""
    if spec.every_ms is not None:
        return (at_or_before_ms // spec.every_ms) * spec.every_ms
    zone = ZoneInfo(spec.tz)
    start = _naive_local(at_or_before_ms, zone) + timedelta(seconds=1)
    fold_top = _fold_top_wall(at_or_before_ms, zone)
    if fold_top is not None:  # the first pass showed later wall times, all of them earlier
        start = max(start, fold_top)
    it = _iterator(spec, start, backwards=True)
    while True:
        tick = _instant_ms(it.get_prev(datetime), zone)
        if tick <= at_or_before_ms:
            return tick


def _fold_top_wall(at_ms: int, zone: ZoneInfo) -> datetime | None:
    """In a fall-back fold's second pass, the wall time the clock fell back from; else None.

    Every wall time before it was already shown by the first pass. Assumes at most one
    offset change in a day, true of every zone today.
    """
    day_ago_ms = at_ms - _DAY // _ONE_MS
    before = _offset(day_ago_ms, zone)
    drop = before - _offset(at_ms, zone)
    if drop <= timedelta(0):
        return None
    lo_ms, hi_ms = day_ago_ms, at_ms  # bisect for the transition: the first ms of the new offset
    while hi_ms - lo_ms > 1:
        mid_ms = (lo_ms + hi_ms) // 2
        lo_ms, hi_ms = (mid_ms, hi_ms) if _offset(mid_ms, zone) == before else (lo_ms, mid_ms)
    if at_ms >= hi_ms + drop // _ONE_MS:
        return None
    return _naive_local(hi_ms, zone) + drop


def _offset(at_ms: int, zone: ZoneInfo) -> timedelta:
    offset = (_EPOCH + at_ms * _ONE_MS).astimezone(zone).utcoffset()
    assert offset is not None  # noqa: S101 - a ZoneInfo always has one
    return offset


def period_ms(spec: ScheduleSpec, around_ms: int) -> int:
    """The gap between the tick at or before `around_ms` and the next one."""
    if spec.every_ms is not None:
        return spec.every_ms
    prev = prev_tick_ms(spec, around_ms)
    return next_tick_ms(spec, prev) - prev


def count_ticks(spec: ScheduleSpec, after_ms: int, until_ms: int) -> int:
    """How many ticks lie in (after_ms, until_ms]; cron forms stop at `MAX_COUNTED` + 1."""
    if spec.every_ms is not None:
        return max(0, until_ms // spec.every_ms - after_ms // spec.every_ms)
    count = 0
    for tick in _cron_ticks_after(spec, after_ms):
        if tick > until_ms or count > MAX_COUNTED:  # MAX_COUNTED + 1 means "more"
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
    floor_ms = now_ms if last_fired_ms is None else max(now_ms, last_fired_ms)
    nxt = next_tick_ms(spec, floor_ms)
    latest = prev_tick_ms(spec, now_ms)
    if last_fired_ms is None or latest <= last_fired_ms:  # first sight, or nothing new
        return MisfirePlan(fire_tick_ms=None, skipped=0, latest_tick_ms=None, next_tick_ms=nxt)
    fire = latest if now_ms - latest <= grace_ms else None
    skipped = count_ticks(spec, last_fired_ms, latest if fire is None else latest - 1)
    return MisfirePlan(
        fire_tick_ms=fire,
        skipped=min(skipped, MAX_COUNTED),
        latest_tick_ms=latest,
        next_tick_ms=nxt,
        skipped_capped=skipped > MAX_COUNTED,
    )


def tick_job_id(schedule_name: str, tick_ms: int) -> str:
    """The job id of one tick: `cron:{schedule}:{tick ms}` (unique enqueue = once)."""
    return f"cron:{schedule_name}:{tick_ms}"
