"""`python -m bench.peers.redis_cost`: Redis instructions per job, for enqueue and settle.

redis-server runs under `valgrind --tool=callgrind`; its counters are zeroed before a
phase and dumped after it, so each figure is the instructions Redis spent per job in that
phase, repeatable to a few tenths of a percent on a busy machine (CPU time per job moves
by 15 % between identical runs there). Redis's own clock-driven work (`serverCron`) is
counted idle for a few seconds and its rate times the phase's length taken off.

- **enqueue**: `Client.enqueue_many` of `--jobs` no-op jobs (engine-made ids, due now),
  one call, as `bench.peers`' bulk enqueue does; then raw pipelined XADD (500 per round
  trip, `peer_raw.py`'s bulk enqueue) for the floor.
- **read+settle**: the jobs read by `XREADGROUP COUNT --batch` and each batch settled by
  `Scripts.settle_done` while the next batch's entries are pending, as a busy worker does
  (tokens 1: first deliveries; dedupe off: engine-made ids). Includes the XREADGROUP,
  which the raw read+ack loop pays too; `--ack-only` runs the same loop with a plain
  `XACK` instead of the script, for the floor.

`--tree DIR` measures another `tgworkers/` (`git archive REV tgworkers | tar -x -C DIR`).
Prints one line per phase; never asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import redis.asyncio as aredis


def _control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args], check=True, capture_output=True, timeout=120)


class Counted:
    """redis-server under callgrind; `count()` brackets a phase and returns its instructions."""

    def __init__(self, port: int, scratch: Path) -> None:
        self.out = scratch / "cg.out"
        args = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={self.out}",
                "--dump-instr=no", "redis-server", "--bind", "127.0.0.1", "--port", str(port),
                "--save", "", "--appendonly", "no", "--dir", str(scratch)]  # fmt: skip
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.idle_per_s = 0.0

    def _total(self) -> int:
        dumps = sorted(self.out.parent.glob(self.out.name + "*"), key=lambda p: p.stat().st_mtime)
        text = dumps[-1].read_text(errors="replace")
        return int(re.findall(r"^(?:summary|totals):\s+(\d+)", text, flags=re.MULTILINE)[-1])

    def zero(self) -> float:
        _control("-z", str(self.proc.pid))
        return time.monotonic()

    def dump(self, started: float) -> float:
        """Instructions since `zero`, less the idle rate times the time it took."""
        _control("-d", str(self.proc.pid))
        return self._total() - self.idle_per_s * (time.monotonic() - started)

    def measure_idle(self, seconds: float) -> None:
        started = self.zero()
        time.sleep(seconds)
        self.idle_per_s = self.dump(started) / seconds

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)


def _calls(info: dict[str, Any]) -> int:
    return sum(int(v["calls"]) for k, v in info.items() if k.startswith("cmdstat_"))


class Phases:
    """The three phases on one Redis, each bracketed by `Counted.zero`/`dump`."""

    def __init__(self, url: str, server: Counted, jobs: int) -> None:
        from bench.peers.peer_tgworkers import PROCESSORS  # after --tree
        from tgworkers.config import load_settings
        from tgworkers.engine.client import Client, EnqueueRequest
        from tgworkers.engine.registry import Registry

        self.r = aredis.Redis.from_url(url, socket_timeout=600)  # slow under callgrind
        self.server, self.jobs = server, jobs
        self.client = Client(self.r, Registry(PROCESSORS), load_settings({"REDIS_URL": url}))
        self.reqs = [EnqueueRequest(name="bench.noop", payload={}) for _ in range(jobs)]

    async def counted(self, what: str, jobs: int, phase: Callable[[], Awaitable[object]]) -> None:
        calls = _calls(await self.r.info("commandstats"))
        started = self.server.zero()
        await phase()
        spent = self.server.dump(started)
        commands = _calls(await self.r.info("commandstats")) - calls - 1
        print(f"{what}: {spent / jobs:,.0f} Redis instructions/job, "
              f"{commands / jobs:.3f} commands/job ({jobs} jobs)")  # fmt: skip

    async def enqueue(self) -> None:
        for _ in range(2):  # scripts loaded, partition record written, then a clean start
            await self.client.enqueue_many(self.reqs[:10])
            await self.r.flushall()
        await self.counted("enqueue_many", self.jobs, lambda: self.client.enqueue_many(self.reqs))

    async def raw_xadd(self) -> None:
        async def xadd() -> None:
            for start in range(0, self.jobs, 500):  # bench/peers/peer_raw.py's bulk enqueue
                pipe = self.r.pipeline(transaction=False)
                for i in range(start, min(self.jobs, start + 500)):
                    pipe.xadd("raw:s", {"id": str(i), "name": "noop", "payload": "{}"})
                await pipe.execute()

        await self.r.flushall()
        await self.counted("raw pipelined XADD", self.jobs, xadd)

    async def read_settle(self, batch: int, *, ack_only: bool) -> None:
        from tgworkers.engine.wire.keys import GROUP
        from tgworkers.engine.wire.script_items import DoneItem

        await self.r.flushall()
        await self.client.enqueue_many(self.reqs)
        (pk,) = self.client.layout.partitions(self.client.registry.processor_of["bench.noop"])
        await self.r.xgroup_create(pk.ready, GROUP, id="0")
        ttl_ms = self.client.settings.dedupe_ttl_s * 1000

        async def settle(items: list[DoneItem], held: int) -> None:
            if items and ack_only:
                await self.r.xack(pk.ready, GROUP, *(it.entry_id for it in items))
            elif items:
                refused = await self.client.scripts.settle_done(
                    pk, "c1", items, dedupe_ttl_ms=ttl_ms, held=held
                )
                assert not refused, refused

        async def loop() -> None:
            pending: list[DoneItem] = []
            while True:  # settle a batch while the next one is pending, as a busy worker does
                reply: Any = await self.r.xreadgroup(GROUP, "c1", {pk.ready: ">"}, count=batch)
                rows: list[tuple[bytes, dict[bytes, bytes]]] = reply[0][1] if reply else []
                items = [
                    DoneItem(eid, f[b"id"].decode(), f.get(b"auto_id") != b"1", None, 1)
                    for eid, f in rows
                ]
                await settle(pending, len(items))
                pending = items
                if not rows:
                    break

        what = "read+XACK" if ack_only else "read+settle_done"
        await self.counted(f"{what} (batch {batch})", self.jobs, loop)
        assert ack_only or await self.r.xlen(pk.ready) == 0


async def _phases(url: str, server: Counted, a: argparse.Namespace) -> None:
    phases = Phases(url, server, a.jobs)
    await phases.enqueue()
    await phases.raw_xadd()
    await phases.read_settle(a.batch, ack_only=a.ack_only)
    await phases.r.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--tree", help="a tgworkers/ tree to measure instead of this one")
    parser.add_argument("--ack-only", action="store_true")
    parser.add_argument("--idle-s", type=float, default=3.0)
    parser.add_argument("--out", type=Path, help="keep callgrind's dumps in this folder")
    a = parser.parse_args()
    if a.tree:
        sys.path.insert(0, os.path.abspath(a.tree))
    from tgworkers.devstack.redis import free_port

    port = free_port()
    with tempfile.TemporaryDirectory(prefix="tgw-cg-") as scratch:
        if a.out is not None:
            a.out.mkdir(parents=True, exist_ok=True)
        server = Counted(port, a.out or Path(scratch))
        try:
            url = f"redis://127.0.0.1:{port}/0"
            asyncio.run(_wait(url))
            server.measure_idle(a.idle_s)
            asyncio.run(_phases(url, server, a))
        finally:
            server.stop()


async def _wait(url: str) -> None:
    r = aredis.Redis.from_url(url)
    deadline = time.monotonic() + 60
    while True:
        try:
            await r.ping()
            break
        except (OSError, aredis.ConnectionError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
    await r.aclose()


if __name__ == "__main__":
    main()
