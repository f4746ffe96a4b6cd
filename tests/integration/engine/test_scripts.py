"""Each script on a real server: twice = once where it makes sense, and a call after
SCRIPT FLUSH (the script cache is lost on restart) works without surfacing NOSCRIPT."""

from __future__ import annotations

import time

import msgspec
import pytest
from tests.support.engine_state import pk
from tests.support.wait import wait_until

from tgworkers.engine.wire.envelope import Envelope, fields_json, to_fields
from tgworkers.engine.wire.keys import GROUP
from tgworkers.engine.wire.script_items import (
    AcquireItem,
    DoneItem,
    HeldLock,
    LaterItem,
    LeaseItem,
    NewJob,
)
from tgworkers.engine.wire.scripts import Scripts

P = pk()
LATE = 4_000_000_000_000  # 2096: far in the future


def job(job_id: str, due_ms: int = 0) -> NewJob:
    env = Envelope(id=job_id, name="test.work", payload=b"{}", enqueued_ms=1)
    return NewJob(id=job_id, due_ms=due_ms, fields_json=fields_json(to_fields(env)))


async def deliver(redis, consumer: str = "c1") -> list[bytes]:
    await redis.xgroup_create(P.ready, GROUP, id="0", mkstream=True)
    reply = await redis.xreadgroup(GROUP, consumer, {P.ready: ">"}, count=100)
    return [e[0] for e in reply[0][1]] if reply else []


async def test_enqueue_twice_is_once_and_survives_script_flush(redis):
    s = Scripts(redis)
    assert await s.enqueue(P, [job("a"), job("a")], dedupe_ttl_ms=1000) == [True, False]
    await redis.script_flush()
    assert await s.enqueue(P, [job("a"), job("b")], dedupe_ttl_ms=1000) == [False, True]
    assert await redis.xlen(P.ready) == 2


async def test_promote_due_moves_each_job_once(redis):
    s = Scripts(redis)
    # due 1 s ahead: on a loaded machine two calls can be 50 ms apart, and the first must
    # still find the job not yet due
    due = int(time.time() * 1000) + 1000
    await s.enqueue(P, [job("d", due_ms=due)], dedupe_ttl_ms=1000)
    assert (await s.promote_due(P, limit=10))[:3] == (0, 0, due)  # not yet: says when
    await redis.script_flush()
    await wait_until(lambda: _promoted(s), timeout_s=5, what="promoted")
    assert (await s.promote_due(P, limit=10))[0] == 0  # twice = once
    entries = await redis.xrange(P.ready)
    assert [f[b"id"] for _, f in entries] == [b"d"]
    assert entries[0][1][b"due_ms"] == str(due).encode()


async def _promoted(s: Scripts) -> bool:
    return (await s.promote_due(P, limit=10))[0] == 1


async def test_settle_done_is_fenced_and_twice_is_once(redis):
    s = Scripts(redis)
    await s.enqueue(P, [job("x")], dedupe_ttl_ms=1000)
    (entry,) = await deliver(redis)
    item = DoneItem(entry, "x", dedupe=True, lock=None, token=1)
    assert await s.settle_done(P, "someone-else", [item], dedupe_ttl_ms=1000) == [entry]
    await redis.script_flush()
    assert await s.settle_done(P, "c1", [item], dedupe_ttl_ms=1000) == []
    assert await s.settle_done(P, "c1", [item], dedupe_ttl_ms=1000) == [entry]  # already gone
    assert await redis.xlen(P.ready) == 0
    assert await redis.hgetall(P.jobs) == {}
    assert await redis.zscore(P.done, "x") is not None
    assert int(await redis.hget(P.stats, "processed")) == 1


@pytest.mark.promise(3)
async def test_settle_done_applies_each_jobs_dedupe_lock_and_token_to_that_job_only(redis):
    """The batch sends dedupe, locks and tokens other than 1 by position only: each must
    land on its own job (a position off by one would fence, release or dedupe another)."""
    s = Scripts(redis)
    await s.enqueue(P, [job(f"j{i}") for i in range(6)], dedupe_ttl_ms=1000)
    e = await deliver(redis, "me")
    await redis.xclaim(P.ready, GROUP, "me", 0, [e[3], e[4]])  # deliveries 2
    locks = {i: P.lock(f"k{i}") for i in (1, 4, 5)}
    for i, lock in locks.items():
        await redis.set(lock, e[i] + (b"/2" if i == 4 else b"/1"))
    await redis.set(P.lock("k5"), e[5] + b"/2")  # names another delivery: stays
    items = [
        DoneItem(e[0], "j0", dedupe=True, lock=None, token=1),
        DoneItem(e[1], "j1", dedupe=False, lock=locks[1], token=1),
        DoneItem(e[2], "j2", dedupe=True, lock=None, token=2),  # stale: refused
        DoneItem(e[3], "j3", dedupe=False, lock=None, token=2),
        DoneItem(e[4], "j4", dedupe=True, lock=locks[4], token=2),
        DoneItem(e[5], "j5", dedupe=False, lock=locks[5], token=1),
    ]
    assert await s.settle_done(P, "me", items, dedupe_ttl_ms=60_000) == [e[2]]
    assert [x for x, _ in await redis.zrange(P.done, 0, -1, withscores=True)] == [b"j0", b"j4"]
    assert await redis.hkeys(P.jobs) == [b"j2"]
    assert not await redis.exists(locks[1], locks[4])
    assert await redis.get(locks[5]) == e[5] + b"/2"
    assert await redis.xlen(P.ready) == 1


async def test_settle_done_finds_the_batchs_span_across_millisecond_lengths(redis):
    """The span's ends are found comparing ids as text, right for 13-digit milliseconds;
    ids of other lengths (9, 10, 100, 99999, 100000) fall outside it and are each checked
    on their own: settled all the same, in any order."""
    s = Scripts(redis)
    for ms in (9, 10, 100, 99999, 100000):
        await redis.xadd(P.ready, {"id": f"m{ms}"}, id=f"{ms}-0")
    e = await deliver(redis, "me")
    for order in ([2, 0, 1], [4, 3]):  # in no order: the highest first
        batch = [DoneItem(e[i], f"m{i}", dedupe=False, lock=None, token=1) for i in order]
        assert await s.settle_done(P, "me", batch, dedupe_ttl_ms=1000, held=0) == []
    assert await redis.xlen(P.ready) == 0


async def test_settle_done_reads_one_page_for_a_batch_in_any_order(redis):
    """Today's ids (13-digit milliseconds, sequences of any length): the text comparison
    finds the span's ends, so no entry is checked on its own."""
    s = Scripts(redis)
    for ms in (1_700_000_000_000, 1_700_000_000_001):
        for seq in (0, 9, 10, 100):
            await redis.xadd(P.ready, {"id": f"{ms}-{seq}"}, id=f"{ms}-{seq}")
    e = await deliver(redis, "me")
    batch = [DoneItem(x, x.decode(), dedupe=False, lock=None, token=1) for x in reversed(e)]
    await redis.config_resetstat()
    assert await s.settle_done(P, "me", batch, dedupe_ttl_ms=1000, held=0) == []
    assert (await redis.info("commandstats"))["cmdstat_xpending"]["calls"] == 2
    assert await redis.xlen(P.ready) == 0


async def test_settle_later_moves_to_delayed_with_the_new_envelope(redis):
    s = Scripts(redis)
    await s.enqueue(P, [job("r")], dedupe_ttl_ms=1000)
    (entry,) = await deliver(redis)
    env = Envelope(id="r", name="test.work", payload=b"{}", enqueued_ms=1, attempt=2)
    blob = fields_json(to_fields(env))
    refused, earliest = await s.settle_later(
        P, "c1", [LaterItem(entry, "r", 0, 50, True, blob, None, 1)]
    )
    assert refused == []
    assert earliest > 0
    assert await redis.zscore(P.delayed, "r") == earliest
    assert await redis.hget(P.jobs, "r") == b"d"
    assert msgspec.json.decode(await redis.hget(P.delayed_jobs, "r"))[7] == "2"  # attempt field
    stats = await redis.hgetall(P.stats)
    assert (stats[b"retried"], stats[b"failed"]) == (b"1", b"1")


async def test_renew_leases_never_takes_back_an_entry_another_consumer_owns(redis):
    from tgworkers.engine.wire.script_items import LeaseItem

    s = Scripts(redis)
    await s.enqueue(P, [job("z")], dedupe_ttl_ms=1000)
    (entry,) = await deliver(redis, "old")
    await redis.xclaim(P.ready, GROUP, "new", 0, [entry])
    lost, deleted = await s.renew_leases(
        P, "old", [LeaseItem(entry, "z", None, 1)], lock_ttl_ms=1000
    )
    assert (lost, deleted) == ([entry], [])
    pending = await redis.xpending_range(P.ready, GROUP, "-", "+", 10)
    assert [p["consumer"] for p in pending] == [b"new"]


async def test_remove_consumer_keeps_one_with_pending_entries(redis):
    s = Scripts(redis)
    await s.enqueue(P, [job("p")], dedupe_ttl_ms=1000)
    await deliver(redis, "busy")
    await redis.xreadgroup(GROUP, "idle", {P.ready: ">"}, count=1)
    assert await s.remove_consumer(P, "busy") is False
    assert await s.remove_consumer(P, "idle") is True
    names = [c["name"] for c in await redis.xinfo_consumers(P.ready, GROUP)]
    assert names == [b"busy"]


async def test_forget_stale_drops_only_records_whose_job_is_gone(redis):
    s = Scripts(redis)
    await s.enqueue(
        P,
        [job("kept"), job("gone"), job("later", due_ms=int(time.time() * 1000) + 60_000)],
        dedupe_ttl_ms=1000,
    )
    entries = {f[b"id"]: e for e, f in await redis.xrange(P.ready)}
    await redis.xdel(P.ready, entries[b"gone"])  # behind the engine's back
    await redis.hset(P.jobs, "ghost-delayed", "d")
    cursor, removed = await s.forget_stale(P, cursor=0, count=100)
    assert (cursor, removed) == (0, 2)
    assert sorted(await redis.hkeys(P.jobs)) == [b"kept", b"later"]


async def test_renew_leases_reports_an_entry_deleted_while_held_and_counts_it_lost(redis):
    from tgworkers.engine.wire.script_items import LeaseItem

    s = Scripts(redis)
    await s.enqueue(P, [job("held")], dedupe_ttl_ms=1000)
    (entry,) = await deliver(redis, "me")
    await redis.xdel(P.ready, entry)
    lost, deleted = await s.renew_leases(
        P, "me", [LeaseItem(entry, "held", None, 1)], lock_ttl_ms=1000
    )
    assert (lost, deleted) == ([], [entry])
    assert await redis.hget(P.stats, "lost") == b"1"
    assert await redis.hget(P.jobs, "held") is None
    assert await redis.xpending(P.ready, GROUP) == {
        "pending": 0,
        "min": None,
        "max": None,
        "consumers": [],
    }


# --------------------------------------------------------------------------- fencing tokens


async def test_a_settle_with_an_older_delivery_token_is_refused_even_under_the_same_name(redis):
    s = Scripts(redis)
    await s.enqueue(P, [job("t")], dedupe_ttl_ms=1000)
    (entry,) = await deliver(redis, "me")
    # our own sweep (same consumer name) reclaimed it: the delivery count is now 2
    await redis.xautoclaim(P.ready, GROUP, "me", 0, "0-0")
    stale = DoneItem(entry, "t", dedupe=True, lock=None, token=1)
    assert await s.settle_done(P, "me", [stale], dedupe_ttl_ms=1000) == [entry]
    lost, _ = await s.renew_leases(P, "me", [LeaseItem(entry, "t", None, 1)], lock_ttl_ms=1000)
    assert lost == [entry]
    assert not await s.record_steps(P, "me", entry, 1, "t", b'["a"]')
    assert await redis.hget(P.steps, "t") is None
    current = DoneItem(entry, "t", dedupe=True, lock=None, token=2)
    assert await s.settle_done(P, "me", [current], dedupe_ttl_ms=1000) == []
    assert await redis.xlen(P.ready) == 0


@pytest.mark.promise(6)
async def test_the_key_lock_names_the_delivery_that_holds_it_not_the_job_id(redis):
    """Three entries of one job id (a producer retried its plain XADD): the lock held the
    job id, so every one of them took it, renewed it and released it."""
    s = Scripts(redis)
    fields = {"id": "x", "name": "test.exclusive", "payload": "{}", "key": "k"}
    for _ in range(3):
        await redis.xadd(P.ready, fields)
    a, b, c = await deliver(redis, "me")
    lock, blob = P.lock("k"), b'["id","x"]'

    def acquire(entry: bytes, token: int = 1) -> AcquireItem:
        return AcquireItem(entry, "x", lock, blob, token, wait_ms=60_000)

    assert await s.acquire_keys(P, "me", [acquire(a), acquire(b)], lock_ttl_ms=60_000) == [1, 0]
    assert await redis.get(lock) == a + b"/1"
    assert await redis.zscore(P.delayed, "x") is not None  # b waits for the key
    lost, _ = await s.renew_leases(P, "me", [LeaseItem(c, "x", lock, 1)], lock_ttl_ms=60_000)
    assert lost == [c]  # c never held the key: renewing it is no lease on the key
    done = DoneItem(c, "x", dedupe=False, lock=lock, token=1)
    assert await s.settle_done(P, "me", [done], dedupe_ttl_ms=1000) == []
    assert await redis.get(lock) == a + b"/1"  # c's settle leaves a's lock alone
    # our own sweep reclaims a (delivery 2): the lock still names delivery 1
    await redis.xautoclaim(P.ready, GROUP, "me", 0, a)
    lost, _ = await s.renew_leases(P, "me", [LeaseItem(a, "x", lock, 2)], lock_ttl_ms=60_000)
    assert lost == [a]
    await redis.delete(lock)  # delivery 1's lock expired
    assert await s.acquire_keys(P, "me", [acquire(a, 2)], lock_ttl_ms=60_000) == [1]
    assert await redis.get(lock) == a + b"/2"
    done = DoneItem(a, "x", dedupe=False, lock=lock, token=2)
    assert await s.settle_done(P, "me", [done], dedupe_ttl_ms=1000) == []
    assert not await redis.exists(lock)


@pytest.mark.promise(6)
async def test_hold_locks_extends_and_releases_only_a_lock_naming_the_delivery_never_takes_one(
    redis,
):
    """A lost run still in its clean-up keeps its lock (extended) and releases it on return;
    a lock that expired, or names another delivery, is left as it is."""
    s = Scripts(redis)
    mine, other, gone = P.lock("a"), P.lock("b"), P.lock("c")
    await redis.set(mine, "1-0/1", px=1000)
    await redis.set(other, "1-0/2", px=1000)  # a newer delivery of the same entry holds it
    held = [HeldLock(mine, b"1-0", 1), HeldLock(other, b"1-0", 1), HeldLock(gone, b"1-0", 1)]
    assert await s.hold_locks(held, ttl_ms=60_000) == [True, False, False]
    assert await redis.pttl(mine) > 50_000
    assert await redis.pttl(other) <= 1000
    assert not await redis.exists(gone)  # never taken
    assert await s.hold_locks(held, ttl_ms=0) == [True, False, False]
    assert not await redis.exists(mine)
    assert await redis.get(other) == b"1-0/2"


@pytest.mark.promise(3)
async def test_a_deferred_suspect_restored_under_a_sweepers_name_never_revives_an_older_delivery(
    redis,
):
    """Issue #22 item 6, ruled out. `reclaim_idle` gives a repeat suspect it may not take
    back its delivery count (`RETRYCOUNT n-1`) under the sweeper's own name, so a token of
    that sweeper can match XPENDING again. It only ever restores the count the entry had
    before that same call, and a taking claim raises it: the tokens handed out grow, and
    only the newest one handed out can ever be valid. Three sweepers, random rooms."""
    import random

    s = Scripts(redis)
    await s.enqueue(P, [job("p")], dedupe_ttl_ms=1000)
    (entry,) = await deliver(redis, "a")
    handed = [("a", 1)]  # deliveries a handler ran: (consumer, token)
    rng = random.Random(22)
    revived, was_valid = 0, True
    for _ in range(300):
        sweeper, room = rng.choice("abc"), rng.choice((0, 0, 1))
        page = await s.reclaim_idle(
            P, sweeper, min_idle_ms=0, cursor=b"0-0", count=10, max_deliveries=10_000,
            suspect_deliveries=1, suspect_room=room,
        )  # fmt: skip
        for c in page.claimed:
            assert c.deliveries > handed[-1][1]  # a new delivery's token was never used
            handed.append((sweeper, c.deliveries))
        ((_, owner, _, count),) = [
            (e["message_id"], e["consumer"].decode(), e["time_since_delivered"],
             e["times_delivered"])
            for e in await redis.xpending_range(P.ready, GROUP, entry, entry, 1)
        ]  # fmt: skip
        valid = [h for h in handed if h == (owner, count)]
        assert valid in ([], [handed[-1]]), (handed[-3:], owner, count)
        revived += bool(valid) and not was_valid and not page.claimed
        was_valid = bool(valid)
    assert revived  # item 6's case happened: a fenced delivery valid again, the newest only
    for consumer, token in handed[:-1]:  # and every older one is refused by every script
        stale = DoneItem(entry, "p", dedupe=False, lock=None, token=token)
        assert await s.settle_done(P, consumer, [stale], dedupe_ttl_ms=1000) == [entry]


async def test_step_records_are_fenced_and_leave_with_their_job(redis):
    s = Scripts(redis)
    await s.enqueue(P, [job("s")], dedupe_ttl_ms=1000)
    (entry,) = await deliver(redis, "me")
    assert await s.record_steps(P, "me", entry, 1, "s", b'["first"]')
    assert await redis.hget(P.steps, "s") == b'["first"]'
    done = DoneItem(entry, "s", dedupe=False, lock=None, token=1)
    assert await s.settle_done(P, "me", [done], dedupe_ttl_ms=1000) == []
    assert await redis.hget(P.steps, "s") is None
    # a zombie run of the settled job cannot recreate the record
    assert not await s.record_steps(P, "me", entry, 1, "s", b'["first","second"]')
    assert await redis.hget(P.steps, "s") is None


async def test_drain_and_the_stale_walk_remove_step_records(redis):
    s = Scripts(redis)
    soon = int(time.time() * 1000) + 60_000
    await s.enqueue(P, [job("ready"), job("later", due_ms=soon), job("gone")], dedupe_ttl_ms=1000)
    await redis.hset(P.steps, mapping={"ready": "[]", "later": "[]", "gone": "[]"})
    entries = {f[b"id"]: e for e, f in await redis.xrange(P.ready)}
    await redis.xdel(P.ready, entries[b"gone"])  # lost behind the engine's back
    assert (await s.forget_stale(P, cursor=0, count=100))[1] == 1
    assert await redis.hget(P.steps, "gone") is None
    await redis.xgroup_create(P.ready, GROUP, id="0", mkstream=True)
    assert await s.drain_ready(P, delayed=True, limit=100) == (1, 1, False)
    assert await redis.hlen(P.steps) == 0


async def test_a_snooze_due_in_the_past_waits_a_floor_that_doubles_per_past_due_snooze(redis):
    from tgworkers.engine.wire.scripts import SNOOZE_FLOOR_MS

    s = Scripts(redis)
    await s.enqueue(P, [job("z")], dedupe_ttl_ms=1000)
    env = Envelope(id="z", name="test.work", payload=b"{}", enqueued_ms=1)
    blob = fields_json(to_fields(env))
    for snoozes in (0, 1):
        (entry,) = await deliver(redis) if snoozes == 0 else await _redeliver(redis, s)
        past = 1_000  # a due time long gone by Redis's clock
        item = LaterItem(entry, "z", past, 0, False, blob, None, 1, snoozes=snoozes)
        before = await _redis_ms(redis)
        refused, earliest = await s.settle_later(P, "c1", [item])
        after = await _redis_ms(redis)
        assert refused == []
        floor = SNOOZE_FLOOR_MS * 2**snoozes
        assert before + floor <= earliest <= after + floor
        fields = msgspec.json.decode(await redis.hget(P.delayed_jobs, "z"))
        assert fields[-2:] == ["snoozes", str(snoozes + 1)]


async def _redis_ms(redis) -> int:
    seconds, micros = await redis.time()
    return seconds * 1000 + micros // 1000


async def _redeliver(redis, s: Scripts) -> list[bytes]:
    await redis.zadd(P.delayed, {"z": 0})  # due now
    assert (await s.promote_due(P, limit=10)).moved == 1
    reply = await redis.xreadgroup(GROUP, "c1", {P.ready: ">"}, count=10)
    return [e[0] for e in reply[0][1]]


async def test_a_job_whose_key_is_held_waits_longer_each_time(redis):
    from tgworkers.engine.runtime.exclusive import (
        EXCLUSIVE_WAIT_MAX_MS,
        EXCLUSIVE_WAIT_MS,
        exclusive_wait_ms,
    )

    waits = [exclusive_wait_ms(n) for n in range(8)]
    assert EXCLUSIVE_WAIT_MS / 2 <= waits[0] <= EXCLUSIVE_WAIT_MS
    assert waits[3] >= EXCLUSIVE_WAIT_MS * 4  # half of 8x at least: it grows
    assert all(w <= EXCLUSIVE_WAIT_MAX_MS for w in waits)
    assert min(exclusive_wait_ms(20) for _ in range(50)) >= EXCLUSIVE_WAIT_MAX_MS / 2


async def test_enqueue_checks_the_whole_batch_before_writing_anything(redis):
    from redis.exceptions import ResponseError

    s = Scripts(redis)
    bad = NewJob(id="bad", due_ms=0, fields_json=b'["id", "bad", "name"')  # cut short
    with pytest.raises(ResponseError, match=r"job 2 \(id bad\)"):
        await s.enqueue(P, [job("good"), bad], dedupe_ttl_ms=1000)
    assert not await redis.exists(P.ready)
    assert await redis.hlen(P.jobs) == 0


@pytest.mark.promise(5)
async def test_enqueue_refuses_fields_whose_id_is_not_the_id_argument(redis):
    """Dedupe is on the argument, the job that runs is the fields' id: a mismatch ran
    the job twice within the dedupe window and left a stale state record behind."""
    from redis.exceptions import ResponseError

    s = Scripts(redis)
    other = job("b")
    liar = NewJob(id="a", due_ms=0, fields_json=other.fields_json)
    nameless = NewJob(id="n", due_ms=0, fields_json=b'["name", "test.work", "payload", "{}"]')
    for bad in (liar, nameless):
        with pytest.raises(ResponseError, match=rf"job 2 \(id {bad.id}\): the fields"):
            await s.enqueue(P, [job("good"), bad], dedupe_ttl_ms=1000)
    assert not await redis.exists(P.ready)
    assert await redis.hlen(P.jobs) == 0


@pytest.mark.promise(5)
async def test_enqueue_refuses_a_due_time_that_is_not_whole_milliseconds_in_range(redis):
    """`inf` passed `tonumber` and was stored as a due time that never comes."""
    from redis.exceptions import ResponseError

    s = Scripts(redis)
    raw = s._s["enqueue"]  # the plain EVALSHA of wire-format.md: any string as the due time
    keys = [P.ready, P.delayed, P.delayed_jobs, P.jobs, P.done, P.dlq]
    for due in ("inf", "-inf", "nan", "-5", "1.5", "1e3", "0x10", "", "99999999999999999999",
                "253402300800000"):  # fmt: skip
        args = [1000, P.wake_channel, 2, "ok", 0, job("ok").fields_json, "j", due]
        args.append(job("j").fields_json)
        with pytest.raises(ResponseError, match=r"job 2 \(id j\): due ms .* is not whole"):
            await raw(keys=keys, args=args)
    assert not await redis.exists(P.ready, P.delayed, P.delayed_jobs, P.jobs)
    last = 253402300799999
    assert await s.enqueue(P, [job("late", due_ms=last)], dedupe_ttl_ms=1000) == [True]
    assert await redis.zscore(P.delayed, "late") == last


@pytest.mark.promise(7)
async def test_enqueue_refuses_fields_that_are_not_all_strings_naming_the_job(redis):
    """The batch's first check is one pass that a non-string field ends by raising; the
    job is then named by the field-by-field check, and nothing of the batch is written."""
    from redis.exceptions import ResponseError

    s = Scripts(redis)
    for fields in (b'["id", "x", "attempt", 1]', b'["id", "x", "n", null]', b'["id", "x", "n", true]',
                   b'["id", "x", "n", ["y"]]', b'["id", "x", "n"]', b'{"id": "x"}', b'"id"', b"[]",
                   b"7", b"not json"):  # fmt: skip
        bad = NewJob(id="x", due_ms=0, fields_json=fields)
        with pytest.raises(ResponseError, match=r"job 2 \(id x\): fields are not a JSON array"):
            await s.enqueue(P, [job("good"), bad, job("after")], dedupe_ttl_ms=1000)
    assert not await redis.exists(P.ready, P.jobs)


async def test_enqueue_reads_and_writes_a_batch_in_one_call_each_past_the_unpack_limit(redis):
    """One HMGET, one ZMSCORE and one HSET per 1,000 jobs (Lua's unpack takes a few
    thousand values), one XADD per ready job; dedupe answers as before, an id twice in
    one batch included; a delayed job that becomes the earliest wakes the promoter once."""
    s = Scripts(redis)
    assert await s.enqueue(P, [job("old"), job("old-later", due_ms=LATE)], dedupe_ttl_ms=1000)
    ready = [job(f"r{i}") for i in range(1500)]
    later = [job(f"d{i}", due_ms=LATE - i) for i in range(1000)]
    batch = [*ready, job("old"), job("r7"), *later, job("old-later", due_ms=1)]
    pubsub = redis.pubsub()
    await pubsub.subscribe(P.wake_channel)
    await redis.config_resetstat()
    created = await s.enqueue(P, batch, dedupe_ttl_ms=1000)
    calls = {k[8:]: v["calls"] for k, v in (await redis.info("commandstats")).items()}
    assert created == [True] * 1500 + [False, False] + [True] * 1000 + [False]
    assert {k: calls.get(k) for k in ("hmget", "zmscore", "hset", "zadd", "xadd", "publish")} == {
        "hmget": 3, "zmscore": 3, "hset": 4, "zadd": 1, "xadd": 1500, "publish": 1,
    }  # fmt: skip
    assert await redis.xlen(P.ready) == 1501
    assert await redis.hlen(P.jobs) == 2502
    assert await redis.hget(P.jobs, "d999") == b"d"
    assert (await redis.hget(P.jobs, "r1499")).startswith(b"r:")
    assert await redis.zrange(P.delayed, 0, 0) == [b"d999"]
    assert await redis.hget(P.delayed_jobs, "d0") == later[0].fields_json
    messages = [await pubsub.get_message(timeout=1.0) for _ in range(2)]
    assert [m["type"] for m in messages if m] == ["subscribe", "message"]
    await pubsub.aclose()


async def test_settle_done_checks_entries_beyond_a_cut_pending_page_one_by_one(redis):
    s = Scripts(redis)
    await s.enqueue(P, [job(f"j{i}") for i in range(150)], dedupe_ttl_ms=1000)
    entries = await deliver(redis, "me")
    assert len(entries) == 100  # the first page of the PEL holds more than the bound
    last = DoneItem(entries[-1], "j99", dedupe=False, lock=None, token=1)
    stale = DoneItem(entries[-2], "j98", dedupe=False, lock=None, token=2)
    assert await s.settle_done(P, "me", [last, stale], dedupe_ttl_ms=1000, held=0) == [entries[-2]]
    assert await redis.hget(P.jobs, "j99") is None
    assert await redis.hget(P.jobs, "j98") is not None


async def test_settle_done_reads_the_pending_entries_of_the_batchs_span_only(redis):
    """The page was this consumer's whole PEL: the next read's entries too (about one more
    per settled job, each a Lua table), or, past the bound, a cut page and one XPENDING per
    job. Now it spans the batch's milliseconds: one page, and the one that finds the trim line."""
    s = Scripts(redis)
    for i in range(150):  # an older read, still running
        await redis.xadd(
            P.ready, {"id": f"o{i}", "name": "test.work", "payload": "{}"}, id=f"10-{i}"
        )
    for i in range(3):
        await redis.xadd(
            P.ready, {"id": f"n{i}", "name": "test.work", "payload": "{}"}, id=f"20-{i}"
        )
    await redis.xadd(P.ready, {"id": "later", "name": "test.work", "payload": "{}"}, id="30-0")
    entries = await deliver(redis, "me")
    entries += [e for e, _ in (await redis.xreadgroup(GROUP, "me", {P.ready: ">"}))[0][1]]
    assert len(entries) == 154
    batch = [DoneItem(e, f"n{i}", dedupe=False, lock=None, token=1)
             for i, e in enumerate(entries[150:153])]  # fmt: skip
    await redis.config_resetstat()
    assert await s.settle_done(P, "me", batch, dedupe_ttl_ms=1000, held=0) == []
    calls = await redis.info("commandstats")
    assert calls["cmdstat_xpending"]["calls"] == 2
    assert await _stream_ids(redis) == [*entries[:150], entries[153]]


async def _stream_ids(redis) -> list[bytes]:
    return [entry for entry, _ in await redis.xrange(P.ready)]


async def test_settle_done_removes_exactly_the_settled_entries_in_any_order(redis):
    """Trimmed below the first pending entry, deleted above it: never an unsettled one."""
    s = Scripts(redis)
    # the same millisecond and the next ones: sequence numbers of different widths
    await s.enqueue(P, [job(f"j{i}") for i in range(12)], dedupe_ttl_ms=1000)
    await s.enqueue(P, [job(f"k{i}") for i in range(3)], dedupe_ttl_ms=1000)
    await redis.xgroup_create(P.ready, GROUP, id="0")
    mine = [e for e, _ in (await redis.xreadgroup(GROUP, "me", {P.ready: ">"}, count=6))[0][1]]
    theirs = [e for e, _ in (await redis.xreadgroup(GROUP, "them", {P.ready: ">"}, count=6))[0][1]]
    unread = [e for e in await _stream_ids(redis) if e not in mine + theirs]
    assert len(unread) == 3

    def done(entries: list[bytes], consumer_ids: list[str]) -> list[DoneItem]:
        return [DoneItem(e, i, dedupe=False, lock=None, token=1)
                for e, i in zip(entries, consumer_ids, strict=True)]  # fmt: skip

    # theirs finish first, above my pending entries: deleted one by one
    assert await s.settle_done(P, "them", done(theirs[1:], ["x"] * 5), dedupe_ttl_ms=1000) == []
    assert await _stream_ids(redis) == [*mine, theirs[0], *unread]
    # mine out of order: the second and the fifth, then the first (a prefix now)
    assert (
        await s.settle_done(P, "me", done([mine[1], mine[4]], ["x", "x"]), dedupe_ttl_ms=1000) == []
    )
    assert await _stream_ids(redis) == [mine[0], mine[2], mine[3], mine[5], theirs[0], *unread]
    assert await s.settle_done(P, "me", done([mine[0]], ["x"]), dedupe_ttl_ms=1000) == []
    assert await _stream_ids(redis) == [mine[2], mine[3], mine[5], theirs[0], *unread]
    # the rest: nothing delivered stays, nothing undelivered goes
    rest = [mine[2], mine[3], mine[5]]
    assert await s.settle_done(P, "me", done(rest, ["x"] * 3), dedupe_ttl_ms=1000) == []
    assert await _stream_ids(redis) == [theirs[0], *unread]
    assert await s.settle_done(P, "them", done([theirs[0]], ["x"]), dedupe_ttl_ms=1000) == []
    assert await _stream_ids(redis) == unread
    assert int(await redis.hget(P.stats, "processed")) == 12


async def test_settle_done_refused_entry_stays_in_the_stream(redis):
    s = Scripts(redis)
    await s.enqueue(P, [job(f"j{i}") for i in range(3)], dedupe_ttl_ms=1000)
    entries = await deliver(redis, "me")
    items = [DoneItem(e, f"j{i}", dedupe=False, lock=None, token=1) for i, e in enumerate(entries)]
    stale = DoneItem(entries[0], "j0", dedupe=False, lock=None, token=2)  # reclaimed since
    assert await s.settle_done(P, "me", [stale, *items[1:]], dedupe_ttl_ms=1000) == [entries[0]]
    assert await _stream_ids(redis) == [entries[0]]
