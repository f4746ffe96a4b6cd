"""Helpers for the operations tests: run the CLI as a subprocess, seed DLQ entries."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import anyio
from redis.asyncio import Redis

from tgworkers.engine.wire.envelope import Envelope, HistoryEntry, to_fields
from tgworkers.engine.wire.keys import PartitionKeys

ROOT = Path(__file__).resolve().parents[2]
APP = "tests.support.jobs:PROCESSORS"


@dataclass
class Result:
    rc: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


async def cli(
    redis_url: str, *args: str, stdin: bytes | None = None, env: Mapping[str, str] | None = None
) -> Result:
    """`python -m tgworkers <args> --app tests.support.jobs:PROCESSORS` in a subprocess."""
    full_env = {
        **os.environ, "PYTHONPATH": str(ROOT), "REDIS_URL": redis_url, "LOG_FORMAT": "json",
        **(env or {}),
    }  # fmt: skip
    proc = await anyio.run_process(
        [sys.executable, "-m", "tgworkers", *args, "--app", APP],
        input=stdin, env=full_env, cwd=ROOT, check=False,
    )  # fmt: skip
    return Result(proc.returncode, proc.stdout.decode(), proc.stderr.decode())


def dead_fields(job_id: str, n: int, *, pad: int = 0) -> list[str | bytes]:
    env = Envelope(
        id=job_id, name="test.work", payload=f'{{"n":{n},"key":"{"x" * pad}"}}'.encode(),
        enqueued_ms=int(time.time() * 1000), attempt=3,
        history=(HistoryEntry(attempt=3, at_ms=1, kind="permanent", message="bad thing"),),
    )  # fmt: skip
    return [*to_fields(env), "reason", "permanent: bad thing", "failed_ms", "1700000000000"]


async def seed_dead(
    redis: Redis, count: int, *, queue: str = "test.work", pad: int = 0
) -> list[str]:
    """Dead-letter entries in the wire format the engine writes; returns their job ids."""
    pk = PartitionKeys("tgw", queue, 0)
    ids = [f"dead-{i}" for i in range(count)]
    base = int(time.time() * 1000)
    for start in range(0, count, 2000):
        pipe = redis.pipeline(transaction=False)
        for i in range(start, min(count, start + 2000)):
            entry = f"{base}-{i}"
            fields = dead_fields(ids[i], i, pad=pad)
            pipe.xadd(pk.dlq, dict(zip(fields[::2], fields[1::2], strict=True)), id=entry)
            pipe.hset(pk.jobs, ids[i], f"x:{entry}")
        await pipe.execute()
    return ids


_COPY_DEAD = """
local fields = {}
for i = 3, #ARGV do fields[#fields + 1] = ARGV[i] end
for i = 1, tonumber(ARGV[1]) do
  fields[2] = ARGV[2] .. i
  local entry = redis.call('XADD', KEYS[1], '*', unpack(fields))
  redis.call('HSET', KEYS[2], ARGV[2] .. i, 'x:' .. entry)
end
return 1
"""


async def seed_many_dead(redis: Redis, count: int, *, pad: int = 0) -> None:
    """`count` copies of one dead-letter entry (ids bulk-1..bulk-N), in one script call."""
    pk = PartitionKeys("tgw", "test.work", 0)
    fields = dead_fields("bulk-0", 0, pad=pad)
    assert fields[0] == "id"
    await redis.eval(_COPY_DEAD, 2, pk.dlq, pk.jobs, count, "bulk-", *fields)
