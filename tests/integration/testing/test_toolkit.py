"""The toolkit's own promises: `perform` behaves as the worker, the harness controls time."""

from __future__ import annotations

import time

import httpx
import msgspec
import pytest

from tgworkers.engine import (
    Disposition,
    Done,
    JobContext,
    JobType,
    Outcome,
    Processor,
    Schedule,
    Snooze,
)
from tgworkers.engine.client import encode_payload
from tgworkers.engine.registry import Registry
from tgworkers.errors import InputError
from tgworkers.testing import FakeClock, assert_enqueued, assert_not_enqueued, perform


class Ping(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    n: int
    sleep_s: float = 0.0


async def ping(ctx: JobContext, p: Ping) -> Outcome:
    if p.sleep_s:
        import anyio

        await anyio.sleep(p.sleep_s)
    if p.n < 0:
        raise ValueError("negative")
    await ctx.enqueue("toy.pong", {"n": p.n + 1}, id=f"pong:{p.n}")
    await ctx.enqueue("toy.pong", {"n": p.n + 1}, id=f"pong:{p.n}")
    if await ctx.redis.get("toy:snooze"):
        return Snooze(after_ms=5000)
    return Done()


async def pong(ctx: JobContext, p: Ping) -> Outcome:
    return Done()


PING = JobType(name="toy.ping", payload=Ping, handler=ping, timeout_s=0.2)
PONG = JobType(name="toy.pong", payload=Ping, handler=pong)
TICK = JobType(name="toy.tick", payload=Ping, handler=pong)
TOY = Processor(
    name="toy",
    job_types=(PING, PONG, TICK),
    schedules=(Schedule(job="toy.tick", default="*/5 * * * *", payload={"n": 0}),),
)
APP = Registry([TOY])


async def test_perform_refuses_a_payload_with_the_message_production_gives(redis):
    with pytest.raises(InputError) as refused:
        await perform("toy.ping", {"n": "one"}, app=APP, redis=redis)
    with pytest.raises(InputError) as live:
        encode_payload(PING, {"n": "one"}, max_bytes=65536)
    assert str(refused.value) == str(live.value)


async def test_perform_records_enqueues_and_dedupes_them_by_id(redis):
    result = await perform("toy.ping", {"n": 1}, app=APP, redis=redis)
    assert result.disposition is Disposition.DONE
    assert [j.id for j in result.enqueued] == ["pong:1"]  # the second enqueue existed
    assert_enqueued(result.enqueued, "toy.pong", payload={"n": 2})
    assert_not_enqueued(result.enqueued, "toy.ping")
    with pytest.raises(AssertionError, match=r"toy.pong id=pong:1"):
        assert_enqueued(result.enqueued, "toy.pong", payload={"n": 3})


async def test_perform_applies_the_timeout_and_the_retry_decision(redis):
    slow = await perform("toy.ping", {"n": 1, "sleep_s": 5}, app=APP, redis=redis)
    assert slow.disposition is Disposition.RETRY
    assert "timeout of 0.2 s" in slow.decision.record.message
    last = await perform("toy.ping", {"n": -1}, app=APP, redis=redis, attempt=10)
    assert last.disposition is Disposition.DEAD
    assert last.reason.startswith("attempts exhausted (10/10)")


async def test_perform_without_redis_says_how_to_give_one():
    result = await perform("toy.ping", {"n": 1}, app=APP)
    assert isinstance(result.error, RuntimeError)
    assert "pass redis= to perform()" in str(result.error)


async def test_perform_routes_peer_calls_to_a_users_transport():
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"betId": "b_1", "status": "settled"})

    result = await perform("cfb.settle", {"betId": "b_1"}, transport=httpx.MockTransport(answer))
    assert result.disposition is Disposition.DONE
    assert [r.headers["idempotency-key"] for r in seen] == ["cfb.settle:b_1"]
    assert seen[0].headers["x-request-id"] == "cfb.settle:b_1:1"


async def test_the_fake_clock_moves_ctx_now_and_enqueue_times(redis):
    clock = FakeClock(start=1_800_000_000)
    clock.advance(60)
    result = await perform("toy.ping", {"n": 1}, app=APP, redis=redis, clock=clock)
    assert result.enqueued[0].at_ms == 1_800_000_060_000


async def test_drain_returns_runs_and_advance_runs_a_snoozed_job_without_sleeping(
    tgw_worker, redis
):
    await redis.set("toy:snooze", "1")
    async with tgw_worker("toy", app=APP) as h:
        await h.enqueue("toy.ping", {"n": 1}, id="p1")
        first = await h.drain("toy")
        await redis.delete("toy:snooze")
        await h.advance(5)
        second = await h.drain("toy")
    assert sorted((r.name, r.outcome) for r in first) == [
        ("toy.ping", "Snooze"),
        ("toy.pong", "Done"),
    ]
    # toy.tick fires every 5 minutes of the fake clock: a run started within 5 s of one
    # crosses it on advance(5), so the ticks are not what this test is about
    assert [(r.id, r.outcome) for r in second if r.name != "toy.tick"] == [("p1", "Done")]


async def test_drain_with_delayed_runs_retries_until_the_dlq(tgw_worker):
    async with tgw_worker("toy", app=APP, env={"MAX_ATTEMPTS_DEFAULT": 3}) as h:
        await h.enqueue("toy.ping", {"n": -1}, id="bad", delay_s=3600)
        runs = await h.drain("toy", with_delayed=True)
        dead = await h.assert_dead_lettered("toy.ping", "bad", reason="attempts exhausted")
    assert [r.attempt for r in runs if r.name == "toy.ping"] == [1, 2, 3]
    assert dead.attempts == 3


async def test_advance_fires_schedules_on_the_fake_clock(tgw_worker):
    async with tgw_worker("toy", app=APP) as h:  # toy.tick: */5 * * * *
        await h.advance(600)
        ticks = [r for r in await h.drain("toy") if r.name == "toy.tick"]
    future = [r for r in ticks if int(r.id.rsplit(":", 1)[1]) > time.time() * 1000]
    assert len(future) == 1  # the older missed tick is past the misfire grace: skipped


async def test_advance_lets_the_dedupe_window_pass(tgw_worker):
    async with tgw_worker("toy", app=APP, env={"DEDUPE_TTL_S": 60}) as h:
        await h.enqueue("toy.pong", {"n": 1}, id="once")
        await h.drain("toy")
        assert not (await h.enqueue("toy.pong", {"n": 1}, id="once")).created
        await h.advance(61)
        assert (await h.enqueue("toy.pong", {"n": 1}, id="once")).created


async def test_perform_refuses_an_unknown_context_keyword_naming_it():
    with pytest.raises(TypeError, match=r"unknown context \['attemt'\]"):
        await perform("toy.ping", {"n": 1}, app=APP, attemt=2)


class At(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    after_ms: int


async def remember_now(ctx: JobContext, p: At) -> Outcome:
    if p.after_ms:
        await ctx.enqueue("clock.later", {"afterMs": 0}, run_at_ms=ctx.now_ms() + p.after_ms)
    return Done()


CLOCK_APP = [
    Processor(
        name="clock",
        job_types=(
            JobType(name="clock.now", payload=At, handler=remember_now),
            JobType(name="clock.later", payload=At, handler=remember_now),
        ),
    )
]


async def test_after_advance_a_handlers_absolute_times_are_on_the_tests_clock(
    tgw_worker, tgw_clock
):
    async with tgw_worker("clock", app=CLOCK_APP) as h:
        await h.advance(3600)
        await h.enqueue("clock.now", {"afterMs": 60_000})
        await h.drain("clock")
        later = await h.assert_enqueued("clock.later", at=tgw_clock.now_ms() + 60_000)
        assert later.delayed
        await h.advance(59)
        assert [r.name for r in await h.drain("clock")] == []
        await h.advance(2)
        assert [r.name for r in await h.drain("clock")] == ["clock.later"]
