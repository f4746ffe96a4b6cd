"""Chaos fixtures: a function-scoped AOF redis-server and a fleet of worker processes.

Every chaos test gets its own `redis-server` (AOF, `appendfsync always`) so it can
restart it, and its own worker subprocesses, all killed at teardown (SIGCONT first,
so a stopped one dies too).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import msgspec
import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import BusyLoadingError, ConnectionError
from tests.support.jobs import RUNS_KEY, RunRecord
from tests.support.processes import WorkerProcess, start_worker
from tests.support.redis_server import RedisServer
from tests.support.wait import wait_until

from tgworkers.config import Settings, load_settings
from tgworkers.engine.client import Client
from tgworkers.engine.registry import Registry
from tgworkers.engine.wire.keys import GROUP, PartitionKeys

VT_MS = 3000
APP = "tests.support.jobs:PROCESSORS"
BASE_ENV: Mapping[str, str] = {
    "VISIBILITY_TIMEOUT_MS": str(VT_MS),
    "SHUTDOWN_GRACE_S": "2",
    "BACKOFF_DEFAULT_MS": "20",
    "BACKOFF_MAX_MS": "100",
    "WAIT_MAX_MS": "60000",  # short backoffs; explicit waits (retryAt) honoured
    "LOG_LEVEL": "info",
}
_runs = msgspec.json.Decoder(RunRecord)


class Fleet:
    """The worker subprocesses of one test; every one is killed at teardown."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.procs: list[WorkerProcess] = []
        self.names: dict[int, str] = {}
        self.seq = 0

    def start(self, processors: str, *, app: str = APP, **env: str) -> WorkerProcess:
        """Start a worker; its consumer name starts `w<n>~` so tests can find its PEL."""
        self.seq += 1
        merged = {**BASE_ENV, "CONSUMER_NAME": f"w{self.seq}", **env}
        proc = start_worker(self.url, processors=processors, app=app, env=merged)
        self.names[proc.pid] = merged["CONSUMER_NAME"]
        self.procs.append(proc)
        return proc

    async def start_ready(self, processors: str, *, app: str = APP, **env: str) -> WorkerProcess:
        proc = self.start(processors, app=app, **env)
        await wait_started(proc)
        return proc

    def consumer(self, proc: WorkerProcess) -> str:
        """The worker's consumer name: CONSUMER_NAME plus its per-start suffix (from its log)."""
        for event in events(proc, "worker.started"):
            return str(event["consumer"])
        raise AssertionError(f"worker {self.names[proc.pid]} has not started:\n{proc.log()}")

    def close(self) -> None:
        for proc in self.procs:
            proc.close()


def events(proc: WorkerProcess, name: str | None = None) -> list[dict[str, Any]]:
    """The JSON log lines of a worker (those named `name` when given)."""
    out = []
    for line in proc.log().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and (name is None or rec.get("event") == name):
            out.append(rec)
    return out


async def wait_started(proc: WorkerProcess, timeout_s: float = 30) -> None:
    """A worker subprocess logged worker.started (its imports alone took over 10 s at load 9)."""

    def started() -> bool:
        assert proc.alive(), f"worker exited early:\n{proc.log()}"
        return bool(events(proc, "worker.started"))

    await wait_until(started, timeout_s=timeout_s, what="worker started")


def now_ms() -> int:
    return int(time.time() * 1000)


async def runs(redis: Redis) -> list[RunRecord]:
    return [_runs.decode(x) for x in await redis.lrange(RUNS_KEY, 0, -1)]


def pk(queue: str = "test.work", partition: int = 0) -> PartitionKeys:
    return PartitionKeys("tgw", queue, partition)


async def pending_by_consumer(redis: Redis, key: PartitionKeys) -> dict[str, int]:
    """XPENDING summary per consumer (empty when nothing is pending)."""
    if not await redis.exists(key.ready):
        return {}
    summary: Any = await redis.xpending(key.ready, GROUP)
    return {
        (c["name"].decode() if isinstance(c["name"], bytes) else c["name"]): int(c["pending"])
        for c in summary.get("consumers") or []
    }


async def pending_entries(redis: Redis, key: PartitionKeys) -> list[dict[str, Any]]:
    if not await redis.exists(key.ready):
        return []
    rows: Any = await redis.xpending_range(key.ready, GROUP, "-", "+", 1000)
    return list(rows)


async def stats(redis: Redis, key: PartitionKeys) -> dict[str, int]:
    raw: Any = await redis.hgetall(key.stats)
    return {k.decode(): int(v) for k, v in raw.items()}


async def queue_idle(redis: Redis, key: PartitionKeys) -> bool:
    """Nothing ready, pending, delayed or live for this partition."""
    return sum((await queue_state(redis, key)).values()) == 0


async def queue_state(redis: Redis, key: PartitionKeys) -> dict[str, int]:
    """How many entries are ready, pending, delayed and recorded for this partition."""
    ready = await redis.xlen(key.ready) if await redis.exists(key.ready) else 0
    pending = sum((await pending_by_consumer(redis, key)).values())
    delayed, records = await redis.zcard(key.delayed), await redis.hlen(key.jobs)
    return {"ready": ready, "pending": pending, "delayed": delayed, "records": records}


@pytest.fixture
def aof_server() -> Iterator[RedisServer]:
    server = RedisServer(appendonly=True, fsync="always")
    server.start()
    yield server
    server.close()


@pytest.fixture
async def r(aof_server: RedisServer) -> AsyncIterator[Redis]:
    # The test's own client rides out the Redis restarts the tests cause.
    retry = Retry(ExponentialBackoff(cap=0.5, base=0.02), retries=20)
    client = Redis.from_url(
        aof_server.url, protocol=2, retry=retry,
        retry_on_error=[ConnectionError, BusyLoadingError],
    )  # fmt: skip
    yield client
    await client.aclose()


@pytest.fixture
def chaos_settings(aof_server: RedisServer) -> Settings:
    env = {"REDIS_URL": aof_server.url, **BASE_ENV}
    return load_settings(env, None)


@pytest.fixture
async def chaos_client(r: Redis, registry: Registry, chaos_settings: Settings) -> Client:
    return Client(r, registry, chaos_settings)


@pytest.fixture
def fleet(aof_server: RedisServer) -> Iterator[Fleet]:
    f = Fleet(aof_server.url)
    yield f
    f.close()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
