from __future__ import annotations

import re

import pytest
from tests.support.engine_state import pk, runs
from tests.support.wait import wait_until

from tgworkers.engine.layout import Layout
from tgworkers.engine.ops.dlq import DeadLetters
from tgworkers.errors import InputError

GOOD = {"id": "good", "name": "test.work", "payload": '{"n": 1}'}

BAD_ENTRIES = [
    ({"name": "test.work", "payload": "{}"}, "missing field 'id'"),
    ({"id": "x1", "payload": "{}"}, "missing field 'name'"),
    (
        {"id": "x2", "name": "test.work", "payload": "{}", "attempt": "many"},
        "'attempt' is not an integer",
    ),
    ({"id": "x3", "name": "no.such.job", "payload": "{}"}, "unknown job name 'no.such.job'"),
    (
        {"id": "x4", "name": "test.work", "payload": '{"n": "seven"}'},
        "Expected `int`, got `str` - at `$.n`",
    ),
    ({"id": "x5", "name": "test.work", "payload": "not json"}, "invalid payload for test.work"),
    (
        {"id": "x6", "name": "test.work", "payload": '{"n": 1, "pad": "' + "x" * 70000 + '"}'},
        "over MAX_PAYLOAD_BYTES",
    ),
    (
        {"id": "x7", "name": "test.work", "payload": "{}", "errors": "[garbage"},
        "field 'errors' is not a history",
    ),
]


@pytest.mark.promise(7)
async def test_bad_entries_written_straight_to_the_stream_end_in_the_dlq_and_the_worker_goes_on(
    redis, settings, registry, worker_factory
):
    dlq = DeadLetters(redis, registry, Layout(settings))
    for fields, _ in BAD_ENTRIES:
        await redis.xadd(pk().ready, fields)
    await redis.xadd(pk().ready, GOOD)
    async with worker_factory(settings, registry, "test.work"):
        await wait_until(lambda: redis.llen("test:runs"), timeout_s=5, what="good job ran")
        await wait_until(lambda: _count(dlq, len(BAD_ENTRIES)), timeout_s=5, what="all in DLQ")
    reasons = [item["reason"] for item in (await dlq.list_jobs("test.work"))["items"]]
    for (_, expected), reason in zip(BAD_ENTRIES, reasons, strict=True):
        assert expected in reason, (expected, reason)
    assert [r.job_id for r in await runs(redis)] == ["good"]


async def _count(dlq, n):
    return await dlq.count("test.work") >= n


@pytest.mark.promise(7)
@pytest.mark.parametrize(
    ("name", "payload", "message"),
    [
        ("no.such.job", {}, "unknown job type 'no.such.job'"),
        (
            "test.work",
            {"n": "seven"},
            "Expected `int`, got `str` at $.n; expected fields: n (int), key (str | None)",
        ),
        ("test.work", "[1, 2", "invalid payload"),
        ("test.work", {"n": 1, "key": "x" * 70000}, "over MAX_PAYLOAD_BYTES (65536)"),
        (
            "test.work",
            b'{"n": 1, "pad": "' + b"x" * 70000 + b'"}',
            "over MAX_PAYLOAD_BYTES (65536)",
        ),
    ],
)
async def test_enqueue_refuses_bad_input_before_redis(redis, client, name, payload, message):
    with pytest.raises(InputError, match=re.escape(message)):
        await client.enqueue(name, payload)
    assert await redis.dbsize() == 0


@pytest.mark.promise(7)
@pytest.mark.parametrize(
    ("when", "message"),
    [
        ({"run_at_ms": -5}, "run at -5 ms: expected Unix ms from 0 to 253402300799999"),
        ({"run_at_ms": 10**16}, "expected Unix ms from 0 to 253402300799999"),
        ({"delay_s": float("inf")}, "delay inf s: expected a finite number >= 0"),
        ({"delay_s": float("nan")}, "delay nan s: expected a finite number >= 0"),
        ({"delay_s": -1.0}, "delay -1.0 s: expected a finite number >= 0"),
    ],
)
async def test_enqueue_refuses_a_due_time_out_of_range_before_redis(redis, client, when, message):
    with pytest.raises(InputError, match=re.escape(message)):
        await client.enqueue("test.work", {"n": 1}, **when)
    assert await redis.dbsize() == 0
