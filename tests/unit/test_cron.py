"""Tick math without Redis: forms, time zones, DST days, misfires, tick ids."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, strategies as st

from tgworkers.engine.cron import (
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
    ],
)
def test_bad_values_name_the_variable(value, message):
    with pytest.raises(ConfigError, match=message.replace("*", r"\*").replace("(", r"\(")):
        parse_schedule(value, variable="CRON_X")


def test_unknown_time_zone_names_schedules_tz():
    with pytest.raises(ConfigError, match="SCHEDULES_TZ"):
        parse_schedule("* * * * *", tz="Mars/Olympus", variable="CRON_X")


def test_seconds_form_ticks_at_epoch_multiples():
    spec = parse_schedule("30", variable="CRON_X")
    assert next_tick_ms(spec, 1_000) == 30_000
    assert next_tick_ms(spec, 30_000) == 60_000
    assert prev_tick_ms(spec, 59_999) == 30_000
    assert period_ms(spec, 123) == 30_000


def test_six_field_form_has_seconds_first():
    spec = parse_schedule("*/10 * * * * *", variable="CRON_X")
    assert next_tick_ms(spec, ms(2026, 1, 1, 0, 0, 1)) == ms(2026, 1, 1, 0, 0, 10)
    assert period_ms(spec, ms(2026, 1, 1)) == 10_000


def test_five_field_form_in_utc():
    spec = parse_schedule("*/15 * * * *", variable="CRON_X")
    assert next_tick_ms(spec, ms(2026, 1, 1, 0, 7)) == ms(2026, 1, 1, 0, 15)
    assert prev_tick_ms(spec, ms(2026, 1, 1, 0, 15)) == ms(2026, 1, 1, 0, 15)


@pytest.mark.parametrize(
    ("tz", "day", "expected_utc"),
    [
        ("Europe/Berlin", (2026, 3, 28), (2026, 3, 28, 1, 30)),
        # spring forward: 02:30 does not exist; fires once at the next valid instant (03:00 CEST)
        ("Europe/Berlin", (2026, 3, 29), (2026, 3, 29, 1, 0)),
        # fall back: 02:30 happens twice; fires once, at the first (02:30 CEST)
        ("Europe/Berlin", (2026, 10, 25), (2026, 10, 25, 0, 30)),
        ("America/New_York", (2026, 3, 8), (2026, 3, 8, 7, 0)),
        ("America/New_York", (2026, 11, 1), (2026, 11, 1, 7, 30)),  # 02:30 EST, not repeated
    ],
)
def test_dst_days_fire_exactly_once_at_the_right_instant(tz, day, expected_utc):
    spec = parse_schedule("30 2 * * *", tz=tz, variable="CRON_X")
    start = ms(*day) - 6 * 3_600_000
    first = next_tick_ms(spec, start)
    second = next_tick_ms(spec, first)
    assert first == ms(*expected_utc)
    assert second - first >= 20 * 3_600_000  # not twice that night


def test_new_york_fall_back_fires_the_repeated_hour_once_at_its_first_occurrence():
    spec = parse_schedule("30 1 * * *", tz="America/New_York", variable="CRON_X")
    first = next_tick_ms(spec, ms(2026, 11, 1, 0, 0))
    assert utc(first) == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT
    assert next_tick_ms(spec, first) == ms(2026, 11, 2, 6, 30)  # next day, 01:30 EST


def test_spring_forward_collapses_the_missing_quarter_hours_into_one_tick():
    spec = parse_schedule("*/15 * * * *", tz="Europe/Berlin", variable="CRON_X")
    t, ticks = ms(2026, 3, 29, 0, 40), []
    for _ in range(4):
        t = next_tick_ms(spec, t)
        ticks.append(utc(t).strftime("%H:%M"))
    assert ticks == ["00:45", "01:00", "01:15", "01:30"]


@given(n=st.integers(1, 86_400), t=st.integers(0, 2**42))
def test_seconds_form_properties(n, t):
    spec = parse_schedule(str(n), variable="CRON_X")
    nxt = next_tick_ms(spec, t)
    assert nxt > t
    assert nxt % (n * 1000) == 0
    prev = prev_tick_ms(spec, t)
    assert prev <= t < nxt
    assert prev_tick_ms(spec, nxt - 1) == prev


T0 = 1_800_000_000_000


@pytest.mark.parametrize(
    ("last", "now", "grace", "fire", "skipped"),
    [
        (None, T0 + 5_000, 10_000, None, 0),  # first sight: wait for the next tick
        (T0 - 1, T0 + 5_000, 10_000, T0, 0),  # on time
        (T0 - 1, T0 + 35_000, 10_000, T0 + 30_000, 3),  # downtime: one catch-up, 3 skipped
        (T0 - 1, T0 + 35_000, 2_000, None, 4),  # all too old: none, all counted
        (T0 + 20_000, T0 + 10_001, 10_000, None, 0),  # clock jumped back: nothing again
        (T0, T0 + 9_999, 10_000, None, 0),  # nothing new yet
    ],
)
def test_misfire_plans(last, now, grace, fire, skipped):
    spec = parse_schedule("10", variable="CRON_X")
    plan = due_ticks(spec, last, now, grace)
    assert (plan.fire_tick_ms, plan.skipped) == (fire, skipped)
    assert plan.next_tick_ms > now


def test_tick_job_id_is_deterministic():
    assert tick_job_id("cfb.settle.sweep", 60_000) == "cron:cfb.settle.sweep:60000"
