"""Memory figures (issue 17): worker RSS over a million jobs, Redis bytes per entry, a
million-job delayed backlog promoted on time.

Run: `.venv/bin/pytest bench/test_memory_bench.py -m bench -s` (about 11 minutes on a
2-core machine). Prints; never asserts on time or size. `BENCH_MEM_JOBS` (default
1,000,000) sizes the two long runs, for a quick look with fewer.

- **worker RSS**: one `run` process (concurrency 100 on each queue). First 20,000
  `bench.nap` jobs of 20 ms, so 100 handlers are in flight at once; then a million
  jobs (nine no-op to one `bench.nap` of 1 ms, so both the finish-at-once path and the
  timed path run), fed with `enqueue_many` in batches of 10,000 while the backlog is
  under 50,000. RSS (`VmRSS` of /proc/<pid>/status) sampled every second.
- **Redis bytes per entry**: 100,000 entries of each kind, in a flushed database,
  two ways. `used_memory` delta: what the allocator really handed out for them (the
  figure to size a server by; jemalloc size classes included). `MEMORY USAGE <key>
  SAMPLES 0` over the keys that hold them: the same, key by key, so the bytes can be
  told apart (the ids are stored once per structure). The length of the fields
  themselves is printed alongside: what the entry needs at the least.
- **delayed backlog promoted on time**: a million `bench.late` jobs enqueued (in
  shuffled order, batches of 10,000) while the worker runs, all due within a window
  of `BENCH_MEM_WINDOW_S` (200) seconds starting `BENCH_MEM_LEAD_S` (150) seconds
  after the first enqueue, so the whole backlog waits in the delayed set before the
  first one is due. Lateness = start - due, taken by the handler (same host clock);
  the promoter's own lag = Redis now - the earliest due time still in the delayed set,
  sampled every 0.5 s.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis.asyncio as aredis
from tests.conftest import make_settings
from tests.support.processes import WorkerProcess, start_worker

from bench.jobs import LATE_KEY
from tgworkers.engine.client import Client, EnqueueRequest
from tgworkers.engine.layout import Layout
from tgworkers.engine.ops.control import Control
from tgworkers.engine.registry import Registry
from tgworkers.engine.wire.keys import PartitionKeys

pytestmark = pytest.mark.bench
APP = "bench.jobs:PROCESSORS"
N_JOBS = int(os.environ.get("BENCH_MEM_JOBS", "1000000"))
N_ENTRIES = 100_000
BATCH = 10_000
WINDOW_S = float(os.environ.get("BENCH_MEM_WINDOW_S", "200"))
LEAD_S = float(os.environ.get("BENCH_MEM_LEAD_S", "150"))


def rss_mib(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):  # noqa: SIM115
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


async def used_memory(r: Any) -> int:
    return int((await r.info("memory"))["used_memory"])


async def processed(r: Any, queues: tuple[str, ...]) -> int:
    keys = [f"{{tgw:{q}:0}}:stats" for q in queues]
    return sum([int(await r.hget(k, "processed") or 0) for k in keys])


async def started(r: Any, url: str, processors: str, env: dict[str, str]) -> WorkerProcess:
    worker = start_worker(url, processors=processors, app=APP, env={"LOG_LEVEL": "warning", **env})
    deadline = time.monotonic() + 60
    while int(await r.zcard("{tgw}:workers")) < 1:
        assert worker.alive(), worker.log()[-2000:]
        assert time.monotonic() < deadline, "the worker did not register"
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)
    return worker


async def wait_for(what: str, done: Callable[[], Any], deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    while not await done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def registry() -> Registry:
    from bench.jobs import PROCESSORS

    return Registry(PROCESSORS)


def keys_of(settings: Any, reg: Registry, queue: str) -> PartitionKeys:
    return Layout(settings).partitions(reg.queue(queue))[0]


# ---------------------------------------------------------------- worker RSS


@pytest.mark.timeout(1800)
async def test_worker_rss(redis_server_url):
    url, reg = redis_server_url, registry()
    settings = make_settings(url)
    r = aredis.Redis.from_url(url, decode_responses=True)
    await r.flushdb()
    queues = ("tgworkers.noop", "bench.nap")
    env = {"CONCURRENCY_TGWORKERS_NOOP": "100", "CONCURRENCY_BENCH_NAP": "100"}
    worker = await started(r, url, ",".join(queues), env)
    client = Client(r, reg, settings)
    try:
        idle = rss_mib(worker.pid)
        # 100 handlers in flight: 20 ms naps at concurrency 100 (at most 5,000/s)
        t0, peak = time.perf_counter(), idle
        await client.enqueue_many(
            [EnqueueRequest(name="bench.nap", payload={"ms": 20}) for _ in range(20_000)]
        )
        while await processed(r, queues) < 20_000:
            peak = max(peak, rss_mib(worker.pid))
            await asyncio.sleep(0.2)
        nap_rate = 20_000 / (time.perf_counter() - t0)
        after_naps = rss_mib(worker.pid)
        samples = await _million(r, client, worker, queues, base=20_000)
    finally:
        worker.close()
        await r.aclose()
    print(f"\n=== worker RSS (load {load()}) ===")
    print(f"idle after start-up: {idle:.1f} MiB")
    print(f"100 handlers in flight (20,000 x 20 ms naps, {nap_rate:,.0f} jobs/s):"
          f" peak {peak:.1f} MiB, after {after_naps:.1f} MiB")  # fmt: skip
    _print_rss(samples)


async def _million(
    r: Any, client: Client, worker: WorkerProcess, queues: tuple[str, ...], *, base: int
) -> list[tuple[float, int, float]]:
    """Feed N_JOBS jobs (9 no-op : 1 nap of 1 ms), backlog < 50,000; (s, jobs, MiB) each second."""
    samples: list[tuple[float, int, float]] = []
    t0 = time.perf_counter()

    async def sample() -> None:
        while True:
            done = await processed(r, queues) - base
            samples.append((time.perf_counter() - t0, done, rss_mib(worker.pid)))
            if done >= N_JOBS:
                return
            await asyncio.sleep(1.0)

    sampler = asyncio.create_task(sample())
    batch = [EnqueueRequest(name="tgworkers.noop", payload={}) for _ in range(BATCH * 9 // 10)]
    batch += [EnqueueRequest(name="bench.nap", payload={"ms": 1}) for _ in range(BATCH // 10)]
    sent = 0
    while sent < N_JOBS:
        if sent - (await processed(r, queues) - base) < 50_000:
            await client.enqueue_many(batch)
            sent += len(batch)
        else:
            await asyncio.sleep(0.02)
    await asyncio.wait_for(sampler, timeout=600)
    return samples


def _print_rss(samples: list[tuple[float, int, float]]) -> None:
    wall, total, _ = samples[-1]
    print(f"{total:,} jobs (9 no-op : 1 nap of 1 ms) in {wall:.0f} s = {total / wall:,.0f} jobs/s")
    print("RSS by jobs done (one sample a second; shown every ~100,000 jobs):")
    shown = -1
    for s, done, mib in samples:
        if done // 100_000 != shown or (s, done, mib) == samples[-1]:
            shown = done // 100_000
            print(f"  {s:6.1f} s  {done:>9,} jobs  {mib:6.1f} MiB")
    rss = [mib for _, _, mib in samples]
    half = [mib for _, done, mib in samples if done >= total // 2]
    print(f"min {min(rss):.1f}  max {max(rss):.1f}  last {rss[-1]:.1f} MiB;"
          f" second half of the run: {min(half):.1f}-{max(half):.1f} MiB")  # fmt: skip


# ---------------------------------------------------------------- Redis bytes per entry


@pytest.mark.timeout(900)
async def test_redis_bytes_per_entry(redis_server_url):
    url, reg = redis_server_url, registry()
    settings = make_settings(url)
    r = aredis.Redis.from_url(url, decode_responses=True)
    client = Client(r, reg, settings)
    rows: list[str] = []
    try:
        noop = keys_of(settings, reg, "tgworkers.noop")
        # delayed, random (auto) ids and producer-chosen ids of the same length as a bet id
        for label, ident in (("delayed job, auto id", None), ("delayed job, own id", "bet-")):
            reqs = [
                EnqueueRequest(name="tgworkers.noop", payload={}, delay_s=3600,
                               id=f"{ident}{i:08d}" if ident else None)
                for i in range(N_ENTRIES)
            ]  # fmt: skip
            keys = (noop.delayed, noop.delayed_jobs, noop.jobs)
            raw = await _measure(r, client, reqs, keys, None)
            sample = await r.hrandfield(noop.delayed_jobs, 1, withvalues=True)
            rows.append(_row(label, raw, len(sample[1]), "fields JSON in the delayed hash"))
        # ready (paused queue, not read)
        control = Control(r, reg, Layout(settings))
        reqs = [EnqueueRequest(name="tgworkers.noop", payload={}) for _ in range(N_ENTRIES)]

        async def paused() -> None:
            await control.set_paused("tgworkers.noop", paused=True)

        raw = await _measure(r, client, reqs, (noop.ready, noop.jobs), paused)
        entry = (await r.xrange(noop.ready, count=1))[0][1]
        rows.append(_row("ready job", raw, _flat_len(entry), "field names + values"))
        # dead-lettered by the worker: PermanentError, one history record
        rej = keys_of(settings, reg, "bench.reject")
        reqs = [EnqueueRequest(name="bench.reject", payload={"bet_id": f"b{i:09d}", "amount": 100})
                for i in range(N_ENTRIES)]  # fmt: skip
        raw = await _measure_worked(r, client, url, reqs, rej, "dead")
        entry = (await r.xrange(rej.dlq, count=1))[0][1]
        rows.append(_row("DLQ entry", raw, _flat_len(entry), "field names + values"))
        # finished with its own id: the dedupe record, kept DEDUPE_TTL_S
        reqs = [EnqueueRequest(name="tgworkers.noop", payload={}, id=f"bet-{i:08d}")
                for i in range(N_ENTRIES)]  # fmt: skip
        raw = await _measure_worked(r, client, url, reqs, noop, "processed")
        rows.append(_row("done record, own id", raw, len("bet-00000000") + 8, "id + score"))
    finally:
        await r.flushdb()
        await r.aclose()
    print(f"\n=== Redis bytes per entry ({N_ENTRIES:,} of each; load {load()}) ===")
    print("\n".join(rows))


def _flat_len(fields: dict[str, str]) -> int:
    return sum(len(k.encode()) + len(v.encode()) for k, v in fields.items())


def _row(label: str, raw: dict[str, int], need: int, need_label: str) -> str:
    per_key = ", ".join(f"{k.rsplit('}', 1)[1] or k}: {v / N_ENTRIES:.0f}"
                        for k, v in raw.items() if k != "used_memory")  # fmt: skip
    total_keys = sum(v for k, v in raw.items() if k != "used_memory") / N_ENTRIES
    return (f"{label:22s} used_memory delta {raw['used_memory'] / N_ENTRIES:6.0f} B;"
            f" MEMORY USAGE {total_keys:6.0f} B ({per_key}); {need_label}: {need} B")  # fmt: skip


async def _measure(
    r: Any, client: Client, reqs: list[EnqueueRequest], keys: tuple[str, ...], before: Any
) -> dict[str, int]:
    await r.flushdb()
    if before is not None:
        await before()
    base = await used_memory(r)
    for start in range(0, len(reqs), BATCH):
        await client.enqueue_many(reqs[start : start + BATCH])
    out = {"used_memory": await used_memory(r) - base}
    for k in keys:
        out[k] = int(await r.memory_usage(k, samples=0) or 0)
    return out


async def _measure_worked(
    r: Any, client: Client, url: str, reqs: list[EnqueueRequest], pk: PartitionKeys, counter: str
) -> dict[str, int]:
    """Entries left behind by a real worker (dead letters, dedupe records), worker gone."""
    await r.flushdb()
    worker = await started(r, url, pk.queue, {})
    try:
        before = await used_memory(r)  # the worker's own records exist already
        for start in range(0, len(reqs), BATCH):
            await client.enqueue_many(reqs[start : start + BATCH])

        async def all_settled() -> bool:
            return int(await r.hget(pk.stats, counter) or 0) >= len(reqs)

        await wait_for(counter, all_settled, 300)
        await asyncio.sleep(0.5)  # the last settle's reply
        out = {"used_memory": await used_memory(r) - before}
    finally:
        worker.close()
    for k in (pk.dlq, pk.done, pk.jobs, pk.ready):
        if await r.exists(k):
            out[k] = int(await r.memory_usage(k, samples=0) or 0)
    return out


# ---------------------------------------------------------------- delayed backlog


@pytest.mark.timeout(1800)
async def test_delayed_backlog_promoted_on_time(redis_server_url):
    url, reg = redis_server_url, registry()
    settings = make_settings(url)
    r = aredis.Redis.from_url(url, decode_responses=True)
    await r.flushdb()
    pk = keys_of(settings, reg, "bench.late")
    worker = await started(r, url, "bench.late", {"CONCURRENCY_BENCH_LATE": "100"})
    client = Client(r, reg, settings)
    try:
        base_mem = await used_memory(r)
        t_enq = time.time()
        first_due = t_enq + LEAD_S
        dues = [first_due + WINDOW_S * i / N_JOBS for i in range(N_JOBS)]
        random.Random(17).shuffle(dues)
        for start in range(0, N_JOBS, BATCH):
            await client.enqueue_many(
                [EnqueueRequest(name="bench.late", payload={"t": d}, run_at_ms=int(d * 1000))
                 for d in dues[start : start + BATCH]]
            )  # fmt: skip
        t_enqueued = time.time()
        backlog = int(await r.zcard(pk.delayed))
        backlog_bytes = await used_memory(r) - base_mem
        rss_before = rss_mib(worker.pid)
        lags, ready, rss = await _watch_promotion(r, pk, worker, first_due)
        late = [_sample(x) for x in await r.lrange(LATE_KEY, 0, -1)]
    finally:
        worker.close()
        await r.flushdb()
        await r.aclose()
    print(f"\n=== {N_JOBS:,} delayed jobs due within {WINDOW_S:.0f} s (load {load()}) ===")
    print(f"enqueued in {t_enqueued - t_enq:.1f} s ({N_JOBS / (t_enqueued - t_enq):,.0f} jobs/s);"
          f" first due {first_due - t_enqueued:.1f} s after the last enqueue"
          f"{'  (LATE: raise BENCH_MEM_LEAD_S)' if t_enqueued > first_due else ''}")  # fmt: skip
    print(f"backlog {backlog:,} delayed jobs; used_memory {backlog_bytes / 2**20:.0f} MiB"
          f" = {backlog_bytes / max(backlog, 1):.0f} B per delayed job")  # fmt: skip
    _print_lateness(late, first_due, t_enqueued)
    print(f"promoter lag (Redis now - earliest due still delayed, every 0.5 s):"
          f" p50 {statistics.median(lags):.0f} ms, p99 {pct(lags, 0.99):.0f} ms,"
          f" max {max(lags):.0f} ms")  # fmt: skip
    print(f"ready backlog (XLEN: promoted, not yet finished, every 0.5 s):"
          f" p50 {statistics.median(ready):,.0f}, p99 {pct(ready, 0.99):,.0f}, max {max(ready):,.0f}")  # fmt: skip
    print(f"worker RSS: {rss_before:.1f} MiB with the backlog waiting,"
          f" {min(rss):.1f}-{max(rss):.1f} MiB while promoting and running")  # fmt: skip


def _sample(raw: str) -> tuple[float, float]:
    due, ms = raw.split()
    return float(due), float(ms)


def _print_lateness(samples: list[tuple[float, float]], first_due: float, enqueued: float) -> None:
    """Over the jobs due after the last enqueue, then by tenth of the window.

    A job due before the enqueue ended may have been enqueued after its due time (a
    slow machine): it is left out and counted, so its lateness is not blamed on promotion.
    """
    kept = [(due, ms) for due, ms in samples if due >= enqueued]
    if len(kept) < len(samples):
        print(f"  {len(samples) - len(kept):,} jobs due before the last enqueue left out")
    late = [ms for _, ms in kept] or [0.0]
    print(f"start - due over {len(kept):,} jobs: p50 {statistics.median(late):.1f} ms,"
          f" p99 {pct(late, 0.99):.1f} ms, p99.9 {pct(late, 0.999):.1f} ms, max {max(late):.1f} ms")  # fmt: skip
    tenths: dict[int, list[float]] = {}
    for due, ms in kept:
        tenths.setdefault(min(9, int((due - first_due) / WINDOW_S * 10)), []).append(ms)
    cells = [
        f"{k + 1}: {statistics.median(v):.0f}/{pct(v, 0.99):.0f}" for k, v in sorted(tenths.items())
    ]
    print("  by tenth of the window, p50/p99 ms: " + ", ".join(cells))


async def _watch_promotion(
    r: Any, pk: PartitionKeys, worker: WorkerProcess, first_due: float
) -> tuple[list[float], list[float], list[float]]:
    """Until every sample is in: the promoter's lag (ms, >= 0), XLEN of ready, worker RSS.

    A promoter that keeps up holds its lag near 0 while the ready backlog shows
    whether the worker keeps up with what was promoted.
    """
    while time.time() < first_due:
        await asyncio.sleep(0.1)
    lags: list[float] = []
    rss: list[float] = []
    ready: list[float] = []
    deadline = time.monotonic() + WINDOW_S + 600
    while int(await r.llen(LATE_KEY)) < N_JOBS:
        assert time.monotonic() < deadline, "timed out waiting for the delayed jobs"
        sec, usec = await r.time()
        head = await r.zrange(pk.delayed, 0, 0, withscores=True)
        if head:
            lags.append(max(0.0, sec * 1000 + usec / 1000 - head[0][1]))
        ready.append(float(await r.xlen(pk.ready)))
        rss.append(rss_mib(worker.pid))
        await asyncio.sleep(0.5)
    return lags or [0.0], ready or [0.0], rss
