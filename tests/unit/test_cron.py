"""Tick math without Redis: forms, time zones, DST days, misfires, tick ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import given, settings, strategies as st

from tgworkers.engine.schedule.cron import (
    MAX_COUNTED,
    ScheduleSpec,
    count_ticks,
    due_ticks,
    next_tick_ms,
    parse_schedule,
    period_ms,
    prev_tick_ms,
    tick_job_id,
)
from tgworkers.errors import ConfigError


def ms(*parts: int) -> int:
    return int(datetime(*parts, tzinfo=UTC).timestamp() * 1000)  # type: ignore[misc]


HOUR_MS = 3_600_000


def utc(t: int) -> datetime:
    return datetime.fromtimestamp(t / 1000, UTC)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "*/x * * * *",
            "CRON_X: not a 5- or 6-field cron expression or a number of seconds: '*/x * * * *'",
        ),
        ("0", "CRON_X: a number of seconds must be positive, got '0'"),
        ("* * *", "CRON_X: not a 5- or 6-field cron"),
        ("61 * * * *", "CRON_X: not a 5- or 6-field cron"),
        ("soon", "CRON_X: not a 5- or 6-field cron"),
        ("-5", "CRON_X: not a 5- or 6-field cron"),
        ("1.5", "CRON_X: not a 5- or 6-field cron"),
        ("\u00b2", "CRON_X: not a 5- or 6-field cron"),  # a digit to str.isdigit, not to int()
        ("* * * * * * *", "CRON_X: not a 5- or 6-field cron"),  # croniter's year field: no
        ("@reboot", "CRON_X: not a 5- or 6-field cron"),
        ("R * * * *", "CRON_X: random or hashed fields (R, H) differ between replicas"),
        ("0 r(0-5) * * *", "CRON_X: random or hashed fields"),
        ("H/5 * * * *", "CRON_X: random or hashed fields"),
        ("0 0 31 2 *", "CRON_X: the cron expression never fires: '0 0 31 2 *'"),
        ("", "CRON_X: not a 5- or 6-field cron"),
    ],
)
def test_bad_values_fail_in_one_line_naming_the_variable(value: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_schedule(value, variable="CRON_X")
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("value", "every_ms", "expression", "seconds_first"),
    [
        ("30", 30_000, None, False),
        (" 5 ", 5_000, None, False),
        ("*/5 * * * *", None, "*/5 * * * *", False),
        ("*/10  *\t* * * *", None, "*/10 * * * * *", True),
        ("0 0 9 * * MON-FRI", None, "0 0 9 * * MON-FRI", True),
        ("0 12 * JAN,MAR *", None, "0 12 * JAN,MAR *", False),  # month names with an R
        ("0 0 29 2 *", None, "0 0 29 2 *", False),  # leap days: rare, but it fires
        ("@hourly", None, "0 * * * *", False),
        ("@DAILY", None, "0 0 * * *", False),
    ],
)
def test_good_values_parse(
    value: str, every_ms: int | None, expression: str | None, seconds_first: bool
) -> None:
    spec = parse_schedule(value, tz=ZoneInfo("Europe/Berlin"), variable="CRON_X")
    assert (spec.every_ms, spec.expression, spec.seconds_first) == (
        every_ms,
        expression,
        seconds_first,
    )
    assert spec.tz == "Europe/Berlin"


def test_unknown_time_zone_names_schedules_tz() -> None:
    with pytest.raises(ConfigError, match="SCHEDULES_TZ"):
        parse_schedule("* * * * *", tz="Mars/Olympus", variable="CRON_X")


def test_seconds_form_ticks_at_epoch_multiples() -> None:
    spec = parse_schedule("30", tz="America/New_York", variable="CRON_X")  # tz plays no part
    assert next_tick_ms(spec, 1_000) == 30_000
    assert next_tick_ms(spec, 30_000) == 60_000
    assert prev_tick_ms(spec, 59_999) == 30_000
    assert prev_tick_ms(spec, 60_000) == 60_000
    assert period_ms(spec, 123) == 30_000
    assert next_tick_ms(spec, ms(2026, 3, 8, 7, 0, 1)) == ms(2026, 3, 8, 7, 0, 30)


def test_six_field_form_has_seconds_first() -> None:
    spec = parse_schedule("*/10 * * * * *", variable="CRON_X")
    assert next_tick_ms(spec, ms(2026, 1, 1, 0, 0, 1)) == ms(2026, 1, 1, 0, 0, 10)
    assert prev_tick_ms(spec, ms(2026, 1, 1, 0, 0, 19)) == ms(2026, 1, 1, 0, 0, 10)
    assert period_ms(spec, ms(2026, 1, 1)) == 10_000
    at_minute = parse_schedule("15 */2 * * * *", variable="CRON_X")  # second 15 of even minutes
    assert next_tick_ms(at_minute, ms(2026, 1, 1, 0, 0, 16)) == ms(2026, 1, 1, 0, 2, 15)


def test_five_field_form_in_utc() -> None:
    spec = parse_schedule("*/15 * * * *", variable="CRON_X")
    assert next_tick_ms(spec, ms(2026, 1, 1, 0, 7)) == ms(2026, 1, 1, 0, 15)
    assert next_tick_ms(spec, ms(2026, 1, 1, 0, 15)) == ms(2026, 1, 1, 0, 30)  # strictly after
    assert next_tick_ms(spec, ms(2026, 1, 1, 0, 14, 59) + 999) == ms(2026, 1, 1, 0, 15)
    assert prev_tick_ms(spec, ms(2026, 1, 1, 0, 15)) == ms(2026, 1, 1, 0, 15)
    assert prev_tick_ms(spec, ms(2026, 1, 1, 0, 15) - 1) == ms(2026, 1, 1, 0, 0)
    assert period_ms(spec, ms(2026, 1, 1, 0, 20)) == 15 * 60_000


def test_five_field_form_follows_the_zone_wall_clock() -> None:
    spec = parse_schedule("0 9 * * *", tz="Europe/Berlin", variable="CRON_X")
    assert next_tick_ms(spec, ms(2026, 1, 15)) == ms(2026, 1, 15, 8, 0)  # CET, UTC+1
    assert next_tick_ms(spec, ms(2026, 7, 15)) == ms(2026, 7, 15, 7, 0)  # CEST, UTC+2


@pytest.mark.parametrize(
    ("tz", "day", "expected_utc"),
    [
        ("UTC", (2026, 3, 29), (2026, 3, 29, 2, 30)),
        ("Europe/Berlin", (2026, 3, 28), (2026, 3, 28, 1, 30)),
        # spring forward: 02:30 does not exist; fires once at the next valid instant (03:00 CEST)
        ("Europe/Berlin", (2026, 3, 29), (2026, 3, 29, 1, 0)),
        # fall back: 02:30 happens twice; fires once, at the first (02:30 CEST)
        ("Europe/Berlin", (2026, 10, 25), (2026, 10, 25, 0, 30)),
        ("America/New_York", (2026, 3, 8), (2026, 3, 8, 7, 0)),  # 03:00 EDT
        ("America/New_York", (2026, 11, 1), (2026, 11, 1, 7, 30)),  # 02:30 EST, not repeated
        # a 30-minute shift: 02:00-02:30 does not exist, 02:30 does (UTC+11)
        ("Australia/Lord_Howe", (2026, 10, 4), (2026, 10, 3, 15, 30)),
        # a 2-hour shift at 01:00 UTC: 01:00-03:00 does not exist; fires at 03:00 (UTC+2)
        ("Antarctica/Troll", (2026, 3, 29), (2026, 3, 29, 1, 0)),
    ],
)
def test_dst_days_fire_exactly_once_at_the_right_instant(
    tz: str, day: tuple[int, int, int], expected_utc: tuple[int, ...]
) -> None:
    spec = parse_schedule("30 2 * * *", tz=tz, variable="CRON_X")
    zone = ZoneInfo(tz)
    local_day = datetime(*day, tzinfo=zone)
    start, end = ms_of(local_day), ms_of(local_day + timedelta(days=1))
    assert count_ticks(spec, start, end) == 1
    assert next_tick_ms(spec, start) == ms(*expected_utc)
    assert prev_tick_ms(spec, end) == ms(*expected_utc)


def ms_of(aware: datetime) -> int:
    return int(aware.timestamp() * 1000)


def test_new_york_fall_back_fires_the_repeated_hour_once_at_its_first_occurrence() -> None:
    spec = parse_schedule("30 1 * * *", tz="America/New_York", variable="CRON_X")
    first = next_tick_ms(spec, ms(2026, 11, 1, 0, 0))
    assert utc(first) == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT
    assert next_tick_ms(spec, first) == ms(2026, 11, 2, 6, 30)  # next day, 01:30 EST
    # at 01:40 EST (the second pass), the latest tick is still the one at 01:30 EDT
    assert prev_tick_ms(spec, ms(2026, 11, 1, 6, 40)) == first


def test_spring_forward_collapses_the_missing_quarter_hours_into_one_tick() -> None:
    spec = parse_schedule("*/15 * * * *", tz="Europe/Berlin", variable="CRON_X")
    t, ticks = ms(2026, 3, 29, 0, 40), []
    for _ in range(4):
        t = next_tick_ms(spec, t)
        ticks.append(utc(t).strftime("%H:%M"))
    assert ticks == ["00:45", "01:00", "01:15", "01:30"]
    assert prev_tick_ms(spec, ms(2026, 3, 29, 1, 14)) == ms(2026, 3, 29, 1, 0)


def test_fall_back_does_not_repeat_the_quarter_hours_of_the_second_pass() -> None:
    spec = parse_schedule("*/15 * * * *", tz="Europe/Berlin", variable="CRON_X")
    # 00:45 UTC = 02:45 CEST; 03:00 CET is 02:00 UTC; the second 02:xx (01:00-02:00 UTC) is quiet
    assert next_tick_ms(spec, ms(2026, 10, 25, 0, 45)) == ms(2026, 10, 25, 2, 0)
    assert prev_tick_ms(spec, ms(2026, 10, 25, 1, 50)) == ms(2026, 10, 25, 0, 45)
    assert period_ms(spec, ms(2026, 10, 25, 1, 0)) == 75 * 60_000
    every_20_s = parse_schedule("*/20 * * * * *", tz="Europe/Berlin", variable="CRON_X")
    assert next_tick_ms(every_20_s, ms(2026, 10, 25, 1, 10)) == ms(2026, 10, 25, 2, 0)
    assert prev_tick_ms(every_20_s, ms(2026, 10, 25, 1, 10)) == ms(2026, 10, 25, 0, 59, 40)


def oracle_ticks(expression: str, zone: ZoneInfo, lo_ms: int, hi_ms: int) -> list[int]:
    """The DST policy by brute force: each minute instant fires when a wall time it first
    shows (itself, or those skipped by a spring-forward jump just before it) matches."""
    ticks, step = [], timedelta(minutes=1)
    peak = utc(lo_ms).astimezone(zone).replace(tzinfo=None)
    for at_ms in range(lo_ms + 60_000, hi_ms + 1, 60_000):
        wall = utc(at_ms).astimezone(zone).replace(tzinfo=None)
        shown = [peak + step * i for i in range(1, (wall - peak) // step + 1)]
        if any(croniter.match(expression, w) for w in shown):
            ticks.append(at_ms)
        peak = max(peak, wall)
    return ticks


@pytest.mark.parametrize(
    ("tz", "month"),
    [
        ("Europe/Berlin", 3),
        ("Europe/Berlin", 10),
        ("America/New_York", 3),
        ("America/New_York", 11),
        ("America/Santiago", 4),  # falls back at local midnight
        ("America/Santiago", 9),  # springs forward at local midnight: 00:00 does not exist
        ("Australia/Lord_Howe", 4),  # 30-minute shifts
        ("Australia/Lord_Howe", 10),
    ],
)
@pytest.mark.parametrize("expression", ["*/20 * * * *", "0 0 * * *", "30 1-3 * * *"])
def test_ticks_match_a_brute_force_oracle_around_transitions(
    tz: str, month: int, expression: str
) -> None:
    zone = ZoneInfo(tz)
    transitions = [
        at_ms
        for at_ms in range(ms(2026, month, 1), ms(2026, month + 1, 1), HOUR_MS)
        if utc(at_ms).astimezone(zone).utcoffset()
        != utc(at_ms - HOUR_MS).astimezone(zone).utcoffset()
    ]
    assert transitions
    spec = parse_schedule(expression, tz=tz, variable="CRON_X")
    for center in transitions:
        lo, hi = center - 5 * HOUR_MS, center + 5 * HOUR_MS
        expected, got, t = oracle_ticks(expression, zone, lo, hi), [], lo
        while (t := next_tick_ms(spec, t)) <= hi:
            got.append(t)
        assert got == expected
        assert [prev_tick_ms(spec, x + 59_999) for x in got] == got


CRON_ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]
CRON_VALUES = ["*/15 * * * *", "30 2 * * *", "0 */2 * * *", "*/20 * * * * *", "0 0 1 * *"]


@settings(deadline=None)
@given(
    tz=st.sampled_from(CRON_ZONES),
    value=st.sampled_from(CRON_VALUES),
    t=st.integers(ms(2026, 1, 1), ms(2027, 1, 1)),
)
def test_cron_next_and_prev_agree(tz: str, value: str, t: int) -> None:
    spec = parse_schedule(value, tz=tz, variable="CRON_X")
    nxt, prev = next_tick_ms(spec, t), prev_tick_ms(spec, t)
    assert prev <= t < nxt
    assert prev_tick_ms(spec, nxt) == nxt
    assert prev_tick_ms(spec, nxt - 1) == prev  # no tick in between
    assert next_tick_ms(spec, prev) == nxt


@given(n=st.integers(1, 86_400), t=st.integers(0, 2**42))
def test_seconds_form_properties(n: int, t: int) -> None:
    spec = parse_schedule(str(n), variable="CRON_X")
    nxt = next_tick_ms(spec, t)
    assert nxt > t
    assert nxt % (n * 1000) == 0
    prev = prev_tick_ms(spec, t)
    assert prev <= t < nxt
    assert prev % (n * 1000) == 0
    assert prev_tick_ms(spec, nxt - 1) == prev


T0 = 1_800_000_000_000


@pytest.mark.promise(8)
@pytest.mark.parametrize(
    ("last", "now", "grace", "fire", "skipped"),
    [
        (None, T0 + 5_000, 10_000, None, 0),  # first sight: wait for the next tick
        (T0 - 5_000, T0 + 5_000, 10_000, T0, 0),  # seen before T0, never fired: T0 fires
        (T0 - 1, T0 + 5_000, 10_000, T0, 0),  # on time
        (T0 - 1, T0 + 10_000, 10_000, T0 + 10_000, 1),  # late by one tick: fire the latest
        (T0 - 1, T0 + 35_000, 10_000, T0 + 30_000, 3),  # downtime: one catch-up, 3 skipped
        (T0 - 1, T0 + 35_000, 2_000, None, 4),  # all too old: none, all counted
        (T0 - 1, T0 + 32_000, 2_000, T0 + 30_000, 3),  # grace is inclusive
        (T0 + 20_000, T0 + 10_001, 10_000, None, 0),  # clock jumped back: nothing again
        (T0 + 10_000, T0 + 10_500, 10_000, None, 0),  # jumped back onto the fired tick
        (T0, T0 + 9_999, 10_000, None, 0),  # nothing new yet
    ],
)
def test_misfire_plans(
    last: int | None, now: int, grace: int, fire: int | None, skipped: int
) -> None:
    spec = parse_schedule("10", variable="CRON_X")
    plan = due_ticks(spec, last, now, grace)
    assert (plan.fire_tick_ms, plan.skipped, plan.skipped_capped) == (fire, skipped, False)
    assert plan.next_tick_ms > max(now, last or now)


@pytest.mark.promise(8)
def test_first_sight_fires_at_the_next_tick_not_before() -> None:
    spec = parse_schedule("*/5 * * * *", variable="CRON_X")
    seen = ms(2026, 1, 1, 0, 3)
    assert due_ticks(spec, None, seen, 300_000).next_tick_ms == ms(2026, 1, 1, 0, 5)
    assert due_ticks(spec, seen, seen + 60_000, 300_000).fire_tick_ms is None
    plan = due_ticks(spec, seen, ms(2026, 1, 1, 0, 5, 1), 300_000)
    assert plan.fire_tick_ms == ms(2026, 1, 1, 0, 5)


@pytest.mark.promise(8)
def test_catch_up_after_downtime_over_a_spring_forward_fires_the_gap_tick_once() -> None:
    spec = parse_schedule("30 2 * * *", tz="Europe/Berlin", variable="CRON_X")
    last, now = ms(2026, 3, 27, 1, 30), ms(2026, 3, 29, 1, 0, 3)  # 02:30 fired on the 27th
    plan = due_ticks(spec, last, now, period_ms(spec, now))
    assert plan.fire_tick_ms == ms(2026, 3, 29, 1, 0)  # 03:00 CEST, for the missing 02:30
    assert plan.skipped == 1  # the 28th
    assert plan.next_tick_ms == ms(2026, 3, 30, 0, 30)


@pytest.mark.promise(8)
def test_a_long_outage_of_a_per_second_cron_counts_a_bounded_number_of_skips() -> None:
    spec = parse_schedule("* * * * * *", variable="CRON_X")
    last = ms(2026, 1, 1)
    plan = due_ticks(spec, last, last + 3 * 86_400_000 + 500, 1_000)
    assert plan.fire_tick_ms == last + 3 * 86_400_000
    assert (plan.skipped, plan.skipped_capped) == (MAX_COUNTED, True)


def test_count_ticks_is_exact_below_the_cap() -> None:
    seconds, minutes = (
        ScheduleSpec(value="7", every_ms=7_000),
        parse_schedule("* * * * *", variable="X"),
    )
    assert count_ticks(seconds, 0, 70_000) == 10
    assert count_ticks(seconds, 6_999, 7_000) == 1
    assert count_ticks(minutes, ms(2026, 1, 1), ms(2026, 1, 2)) == 1440
    assert count_ticks(minutes, ms(2026, 1, 1), ms(2026, 1, 1)) == 0


def test_tick_job_id_is_deterministic() -> None:
    assert tick_job_id("cfb.settle.sweep", 60_000) == "cron:cfb.settle.sweep:60000"
    assert tick_job_id("cfb.settle.sweep", 60_000) == tick_job_id("cfb.settle.sweep", 60_000)
    assert tick_job_id("a", 1) != tick_job_id("a", 2)
