"""A lost run still in its clean-up keeps its key from every other process (promise 6).

A handler cancelled because its delivery was lost may await a compensation before it
re-raises (`except CancelledError: await compensate(); raise`). Its key must stay
locked until it returns, not only in its own process:
- connected to Redis, the run keeps its lock (each renewal pass extends it while it
  still names that delivery) and releases it when it returns;
- cut off from Redis (nothing can be extended), the watchdog cancels the run early
  enough for its job type's declared clean-up (`JobType.cleanup_s`) to end before
  the lock can expire.
Both failed on main before (the fault-schedule checker's seeds 21, 38, 58, 251, 299,
315, 35): the lock expired VT after the run's last renewal while it compensated, and
another process started a job of its key.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, NamedTuple

import anyio
import pytest
from redis.asyncio import Redis
from tests.chaos.conftest import Fleet, events, runs
from tests.faultcheck.app import CLEANUP_S, PROCESSORS as FC_PROCESSORS
from tests.faultcheck.history import HISTORY_DIR_ENV, load_runs
from tests.support.jobs import CLEANUPS_KEY, OVERLAPS_KEY
from tests.support.redis_server import RedisServer
from tests.support.tcp_proxy import TcpProxy
from tests.support.wait import wait_until

from tgworkers.config import load_settings
from tgworkers.engine.client import Client
from tgworkers.engine.registry import Registry
from tgworkers.engine.wire.keys import GROUP, PartitionKeys

pytestmark = [pytest.mark.chaos]


async def _held(r: Redis, queue: str, key: str) -> tuple[PartitionKeys, bytes, str]:
    """The one pending entry of `queue`, its partition, and the lock value naming it."""
    for p in (0, 1):
        pk = PartitionKeys("tgw", queue, p)
        rows: Any = (
            await r.xpending_range(pk.ready, GROUP, "-", "+", 10)
            if await r.exists(pk.ready)
            else []
        )
        for row in rows:
            lock = await r.get(pk.lock(key))
            assert lock is not None, "the running job holds no lock"
            return pk, row["message_id"], lock.decode()
    raise AssertionError("nothing pending")


class Sample(NamedTuple):
    """The key's lock and the next job, seen from Redis at one moment."""

    at: float
    lock: str | None
    pttl_ms: int
    cleaned: bool
    """The lost run has finished its clean-up (it is about to return)."""
    waiting: bool
    """The key's next job is in the delayed set: a worker was refused its key."""

    @classmethod
    async def take(cls, r: Redis, pk: PartitionKeys, job_id: str) -> Sample:
        lock, pttl = await r.get(pk.lock("k0")), await r.pttl(pk.lock("k0"))
        cleaned, delayed = await r.llen(CLEANUPS_KEY), await r.zscore(pk.delayed, job_id)
        value = lock.decode() if lock else None
        return cls(time.monotonic(), value, pttl, bool(cleaned), delayed is not None)


async def _lock_moved_on(r: Redis, lock: str, mine: str) -> float:
    """When (monotonic) `lock` stopped naming `mine`: expired, released or taken."""
    with anyio.fail_after(15):
        while (value := await r.get(lock)) is not None and value.decode() == mine:
            await anyio.sleep(0.01)
    return time.monotonic()


@pytest.mark.promise(6)
async def test_a_lost_run_in_its_clean_up_keeps_its_lock_until_it_returns_then_releases_it(
    r: Redis, chaos_client: Client, fleet: Fleet
) -> None:
    # A runs one job at a time: the lost run holds its only slot, so the key's next job
    # can only go to B, another process
    a = await fleet.start_ready("test.exclusive", CONCURRENCY_TEST_EXCLUSIVE="1")
    slow = {"n": 1, "key": "k0", "sleep_ms": 30_000, "cleanup_ms": 7000, "mode": "track"}
    await chaos_client.enqueue("test.exclusive", slow)
    await wait_until(lambda: r.get("test:sleeping:k0"), timeout_s=15, what="A in its call")
    b = await fleet.start_ready("test.exclusive")
    pk, entry, mine = await _held(r, "test.exclusive", "k0")
    assert mine == f"{entry.decode()}/1"
    # another consumer takes the entry over (and settles it): A's next renewal loses it and
    # cancels the run, which then compensates for 7 s (over two VTs) while A stays connected
    await r.xclaim(pk.ready, GROUP, "thief", 0, [entry])
    await r.xack(pk.ready, GROUP, entry)
    await r.xdel(pk.ready, entry)
    await wait_until(lambda: events(a, "job.lease_lost"), timeout_s=10, what="A lost the run")
    lost_seen = time.monotonic()
    nxt = await chaos_client.enqueue("test.exclusive", {"n": 2, "key": "k0", "mode": "track"})

    seen: list[Sample] = []
    with anyio.fail_after(30):
        while not seen or not (seen[-1].cleaned and seen[-1].lock != mine):
            seen.append(await Sample.take(r, pk, nxt.id))
            await anyio.sleep(0.02)
    during = [s for s in seen if not s.cleaned]
    # unextended, its lock would have expired within VT (3 s) of the loss
    assert during[-1].at - lost_seen > 3.5, "the clean-up was watched for over VT"
    lapses = [s for s in during if s.lock != mine]
    assert not lapses, f"the lost run's lock lapsed during its clean-up: {lapses[:3]}"
    # B read the key's next job meanwhile (A has no free slot) and was refused: it waited
    assert any(s.waiting for s in during), "the next job was never refused its key"
    # released when the run returned, not left to expire: gone with time left on its TTL
    held_last = [s for s in seen if s.lock == mine][-1]
    gone = seen[-1]
    assert gone.at - held_last.at < held_last.pttl_ms / 1000 - 0.2, (held_last, gone)

    async def ran(job_id: str) -> bool:
        return job_id in {x.job_id for x in await runs(r)}

    await wait_until(lambda: ran(nxt.id), timeout_s=30, what="the key's next job ran")
    assert await r.lrange(OVERLAPS_KEY, 0, -1) == [], a.log()[-3000:]
    assert a.alive() and b.alive()
    overran = events(a, "job.cleanup_overran")  # 7 s against the default budget: reported
    assert overran and overran[-1]["running"] is False and not overran[-1]["lock_lapsed"]


@pytest.mark.promise(6)
async def test_a_run_cut_off_from_redis_ends_its_clean_up_before_its_key_passes_on(
    r: Redis, aof_server: RedisServer, fleet: Fleet, tmp_path: Path
) -> None:
    history = tmp_path / "history"
    history.mkdir()
    env = {"VISIBILITY_TIMEOUT_MS": "2000", HISTORY_DIR_ENV: str(history)}
    app = "tests.faultcheck.app:PROCESSORS"
    proxy = TcpProxy(aof_server.port).start()
    try:
        a = await fleet.start_ready("fc.exclusive", app=app, REDIS_URL=proxy.url, **env)
        client = Client(r, Registry(FC_PROCESSORS), load_settings({"REDIS_URL": fleet.url}, None))
        cleanup_ms = int(CLEANUP_S * 1000 * 3 / 4)  # within its job type's budget
        payload = {"n": 1, "key": "k0", "sleep_ms": 30_000, "cleanup_ms": cleanup_ms}
        first = await client.enqueue("fc.exclusive", payload)
        started = history / f"{a.pid}.jsonl"
        await wait_until(lambda: started.exists() and started.read_text(), timeout_s=15,
                         what="A runs the job")  # fmt: skip
        b = await fleet.start_ready("fc.exclusive", app=app, **env)
        pk, _, mine = await _held(r, "fc.exclusive", "k0")

        proxy.black_hole()  # A can no longer renew, extend or release anything
        nxt = await client.enqueue("fc.exclusive", {"n": 2, "key": "k0", "sleep_ms": 50})
        gone_at = await _lock_moved_on(r, pk.lock("k0"), mine)

        def done() -> bool:
            found, _ = load_runs(history, {})
            ended = {x.job_id for x in found if x.pid == b.pid and x.how == "ok"}
            return {first.id, nxt.id} <= ended

        await wait_until(done, timeout_s=40, what="B ran both jobs of the key")
    finally:
        proxy.close()
    found, _ = load_runs(history, {})
    (lost,) = [x for x in found if x.pid == a.pid]
    assert lost.how == "cancelled" and lost.cancelled_at is not None, lost
    assert lost.end - lost.cancelled_at >= cleanup_ms / 1000 - 0.01  # it did clean up
    assert lost.end < gone_at, f"the clean-up ended {lost.end - gone_at:.3f}s after the lock"
    later = [x for x in found if x.pid != a.pid]
    assert later and all(x.start > lost.end for x in later), [x.label() for x in found]
    assert not events(a, "job.cleanup_overran"), a.log()[-3000:]
