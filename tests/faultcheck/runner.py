"""Carry out one schedule against a real redis-server and worker subprocesses.

Each schedule gets its own `redis-server` (AOF, `appendfsync always`: it restarts),
one TCP proxy per worker slot (so a network fault hits one worker), and N workers
running `tests.faultcheck.app`. Jobs are enqueued in waves (the engine's Client;
`dup` jobs by two plain XADDs of one id, docs/wire-format.md) while the faults
fire; then everything is healed, the queue drains (a deadline, not a sleep), the
workers are killed, and the history and Redis's final state go to the checker.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import msgspec
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import BusyLoadingError, ConnectionError, RedisError, TimeoutError

from tests.chaos.conftest import BASE_ENV, events
from tests.faultcheck.app import FC_EXCLUSIVE, PROCESSORS
from tests.faultcheck.checker import History, Job, Outcome, Verdict, check
from tests.faultcheck.history import HISTORY_DIR_ENV, Run, Stall, load_runs
from tests.faultcheck.moveread import held_back, moveread
from tests.faultcheck.schedule import Fault, Schedule
from tests.support.processes import ROOT, WorkerProcess, start_worker
from tests.support.redis_server import RedisServer
from tests.support.tcp_proxy import TcpProxy
from tgworkers.config import load_settings
from tgworkers.engine.client import Client, EnqueueRequest
from tgworkers.engine.registry import Registry
from tgworkers.engine.wire.keys import GROUP, PartitionKeys, partition_of
from tgworkers.errors import TgworkersError

APP = "tests.faultcheck.app:PROCESSORS"
QUEUE = FC_EXCLUSIVE.queue
PARTITIONS_ENV = f"PARTITIONS_{FC_EXCLUSIVE.env_name}"
START_TIMEOUT_S = 60.0
DRAIN_TIMEOUT_S = 60.0
REDIS_ERRORS = (RedisError, OSError)


class Result(msgspec.Struct, kw_only=True):
    seed: int
    kinds: list[str]
    jobs: int
    runs: int
    seconds: float
    verdict: Verdict
    skipped: list[str]
    """Faults that could not be carried out, with the reason."""
    t0: float
    drained: bool


class Slot:
    """Worker slot i: its proxy and the worker process now in it."""

    def __init__(self, index: int, proxy: TcpProxy) -> None:
        self.index = index
        self.proxy = proxy
        self.proc: WorkerProcess | None = None
        self.clock_behind_s = 0.0


class ScheduleRun:
    """The state of one schedule being carried out."""

    def __init__(self, s: Schedule, workdir: Path) -> None:
        self.s = s
        self.workdir = workdir
        self.history = workdir / "history"
        self.history.mkdir(parents=True, exist_ok=True)
        self.server = RedisServer(appendonly=True, fsync="always")
        self.partitions = FC_EXCLUSIVE.partitions
        self.max_partitions = self.partitions
        self.slots: list[Slot] = []
        self.procs: list[WorkerProcess] = []
        self.died: dict[int, float] = {}
        self.stalls: list[Stall] = []
        self.skipped: list[str] = []
        self.registry = Registry(PROCESSORS)
        self.clients: dict[int, Client] = {}
        self.t0 = 0.0
        self.redis: Any = None
        self.first_done: dict[str, float] = {}
        """job id -> Redis time (s) of its first settle_done, seen by `watch_done`."""
        self._done_seen: dict[int, float] = {}

    # ------------------------------------------------------------------ set-up

    async def open(self) -> None:
        await anyio.to_thread.run_sync(self.server.start)
        retry = Retry(ExponentialBackoff(cap=0.5, base=0.02), retries=60)
        self.redis = Redis.from_url(
            self.server.url, protocol=2, retry=retry, socket_timeout=10,
            retry_on_error=[ConnectionError, BusyLoadingError, TimeoutError],
        )  # fmt: skip
        self.slots = [
            Slot(i, TcpProxy(self.server.port).start()) for i in range(self.s.options.workers)
        ]
        for f in self.s.faults:
            if f.kind == "clock":
                self.slots[f.worker].clock_behind_s = 1.5
        for slot in self.slots:
            self.start_in(slot)
        with anyio.fail_after(START_TIMEOUT_S):
            for slot in self.slots:
                await self.wait_started(slot)

    def env(self, slot: Slot) -> dict[str, str]:
        env = {
            **BASE_ENV, "VISIBILITY_TIMEOUT_MS": str(self.s.options.vt_ms),
            "CONSUMER_NAME": f"w{slot.index}", HISTORY_DIR_ENV: str(self.history),
            "REDIS_URL": slot.proxy.url, PARTITIONS_ENV: str(self.partitions),
        }  # fmt: skip
        if slot.clock_behind_s:
            env["TGW_FAULTCHECK_CLOCK_BEHIND_S"] = str(slot.clock_behind_s)
        return env

    def start_in(self, slot: Slot) -> WorkerProcess:
        proc = start_worker(self.server.url, processors=QUEUE, app=APP, env=self.env(slot))
        slot.proc = proc
        self.procs.append(proc)
        return proc

    async def wait_started(self, slot: Slot) -> None:
        proc = slot.proc
        assert proc is not None
        while not events(proc, "worker.started"):
            if not proc.alive():
                raise RuntimeError(f"worker w{slot.index} exited at start:\n{proc.log()[-3000:]}")
            await anyio.sleep(0.05)

    async def close(self, *, keep: bool) -> None:
        for proc in self.procs:
            if proc.alive():
                self.died.setdefault(proc.pid, time.monotonic())
                proc.signal(signal.SIGCONT)
                await anyio.to_thread.run_sync(proc.kill)
            if keep:
                (self.workdir / "logs").mkdir(exist_ok=True)
                shutil.copy(proc.log_path, self.workdir / "logs" / f"{proc.pid}.log")
            proc.close()
        for slot in self.slots:
            slot.proxy.close()
        if self.redis is not None:
            with contextlib.suppress(Exception):
                await self.redis.aclose()
        self.server.close()

    # ------------------------------------------------------------------ producing

    def pk(self, partition: int) -> PartitionKeys:
        return PartitionKeys("tgw", QUEUE, partition)

    async def record(self) -> str:
        key = self.client(FC_EXCLUSIVE.partitions).layout.globals.partitions
        raw = await self.redis.hget(key, QUEUE)
        return raw.decode() if raw else str(self.partitions)

    async def settled_count(self) -> int:
        """The partition count, once no repartition is moving the queue."""
        with anyio.fail_after(120):
            while ">" in (rec := await self.retrying(self.record)):
                await anyio.sleep(0.1)
        return int(rec)

    def client(self, count: int) -> Client:
        if count not in self.clients:
            env = {"REDIS_URL": self.server.url, PARTITIONS_ENV: str(count)}
            self.clients[count] = Client(self.redis, self.registry, load_settings(env, None))
        return self.clients[count]

    async def retrying(self, call: Callable[[], Awaitable[Any]]) -> Any:
        """A producer's call, sent again after a Redis error (ids make it idempotent)."""
        deadline = time.monotonic() + 60
        while True:
            try:
                return await call()
            except REDIS_ERRORS:
                if time.monotonic() > deadline:
                    raise
            except BaseExceptionGroup as group:  # the Client sends partitions in a task group
                if group.split(REDIS_ERRORS)[1] is not None or time.monotonic() > deadline:
                    raise
            await anyio.sleep(0.2)

    async def produce(self) -> None:
        o = self.s.options
        dups = {n for f in self.s.faults if f.kind == "dup" for n in f.jobs}
        later = held_back(self.s.faults)
        for wave in range(o.waves):
            await self.until(wave * o.span_s / o.waves)
            ns = [n for n in range(o.jobs) if self.s.wave_of[n] == wave and n not in later]
            plain = [n for n in ns if n not in dups]
            reqs = [
                EnqueueRequest(name="fc.exclusive", id=self.s.job_id(n),
                               payload=msgspec.structs.asdict(self.s.payloads[n]))
                for n in plain
            ]  # fmt: skip
            await self.enqueue(reqs)
            for n in ns:
                if n in dups:
                    await self.plain_xadd_twice(n)

    async def enqueue(self, reqs: list[EnqueueRequest]) -> None:
        """Enqueue by the recorded partition count (a repartition may change it meanwhile)."""
        while True:
            count = await self.settled_count()
            client = self.client(count)
            try:
                await self.retrying(functools.partial(client.enqueue_many, reqs))
            except TgworkersError:  # the count changed under us: place them again
                continue
            return

    async def plain_xadd_twice(self, n: int) -> None:
        p = self.s.payloads[n]
        fields = {
            "id": self.s.job_id(n), "name": "fc.exclusive", "payload": msgspec.json.encode(p),
            "enqueued_ms": str(int(time.time() * 1000)), "key": p.key, "origin": "faultcheck-dup",
        }  # fmt: skip
        for _ in range(2):
            count = await self.settled_count()
            stream = self.pk(partition_of(p.key, count)).ready
            await self.retrying(functools.partial(self.redis.xadd, stream, fields))

    async def until(self, at_s: float) -> None:
        delay = self.t0 + at_s - time.monotonic()
        if delay > 0:
            await anyio.sleep(delay)  # the schedule's clock: a moment to act at, not a wait

    # ------------------------------------------------------------------ faults

    async def fault(self, f: Fault) -> None:
        await self.until(f.at_s)
        act = getattr(self, "f_" + f.kind, None)
        if act is not None:
            await act(f)

    def slot(self, f: Fault) -> Slot:
        return self.slots[f.worker % len(self.slots)]

    async def f_sigkill(self, f: Fault) -> None:
        slot = self.slot(f)
        if slot.proc is None or not slot.proc.alive():
            self.skipped.append(f"{f.describe()}: the worker had already exited")
            return
        self.died[slot.proc.pid] = time.monotonic()
        await anyio.to_thread.run_sync(slot.proc.kill)
        await self.replace(slot)

    async def f_sigterm(self, f: Fault) -> None:
        slot = self.slot(f)
        proc = slot.proc
        if proc is None or not proc.alive():
            self.skipped.append(f"{f.describe()}: the worker had already exited")
            return
        proc.terminate()
        await self.replace(slot)
        with anyio.move_on_after(30):
            while proc.alive():
                await anyio.sleep(0.05)
        self.died[proc.pid] = time.monotonic()
        if proc.alive():
            self.skipped.append(f"{f.describe()}: w{slot.index} did not exit within 30 s (killed)")
            await anyio.to_thread.run_sync(proc.kill)

    async def replace(self, slot: Slot) -> None:
        await self.settled_count()  # a worker with the old count refuses to start mid-move
        self.start_in(slot)

    async def f_sigstop(self, f: Fault) -> None:
        slot = self.slot(f)
        proc = slot.proc
        if proc is None or not proc.alive():
            self.skipped.append(f"{f.describe()}: the worker had already exited")
            return
        start = time.monotonic()
        proc.signal(signal.SIGSTOP)
        await anyio.sleep(f.duration_s)  # the fault's length
        proc.signal(signal.SIGCONT)
        self.stalls.append(Stall(pid=proc.pid, start=start, end=time.monotonic(), kind="sigstop"))

    async def f_pause(self, f: Fault) -> None:
        await self.retrying(
            lambda: self.redis.execute_command("CLIENT", "PAUSE", int(f.duration_s * 1000), "ALL")
        )

    async def f_maxmemory(self, f: Fault) -> None:
        await self.retrying(lambda: self.redis.config_set("maxmemory", 1))
        try:
            await anyio.sleep(f.duration_s)
        finally:
            await self.retrying(lambda: self.redis.config_set("maxmemory", 0))

    async def f_latency(self, f: Fault) -> None:
        proxy = self.slot(f).proxy
        proxy.latency_s = 0.05
        await anyio.sleep(f.duration_s)
        proxy.latency_s = 0.0

    async def f_blackhole(self, f: Fault) -> None:
        proxy = self.slot(f).proxy
        proxy.black_hole()
        try:
            await anyio.sleep(f.duration_s)
        finally:
            proxy.heal()

    async def f_reset(self, f: Fault) -> None:
        proxy = self.slot(f).proxy
        for _ in range(3):
            await anyio.to_thread.run_sync(proxy.reset_all)
            await anyio.sleep(0.3)

    async def f_restart(self, f: Fault) -> None:
        def restart() -> None:
            self.server.stop(kill=True)
            self.server.start()

        await anyio.to_thread.run_sync(restart)

    async def f_repartition(self, f: Fault) -> None:
        new = self.partitions + 1
        if not await self.repartition(f, new):
            return
        self.partitions = new
        self.max_partitions = max(self.max_partitions, new)
        await self.rolling_restart()

    async def f_moveread(self, f: Fault) -> None:
        await moveread(self, f)

    async def repartition(self, f: Fault, new: int) -> bool:
        """`tgworkers repartition` to `new`; True once the record says `new`."""
        env = {**os.environ, "PYTHONPATH": str(ROOT), "REDIS_URL": self.server.url,
               "VISIBILITY_TIMEOUT_MS": str(self.s.options.vt_ms), PARTITIONS_ENV: str(new)}  # fmt: skip
        cmd = [sys.executable, "-m", "tgworkers", "repartition", QUEUE, str(new),
               "--app", APP, "--timeout", "20"]  # fmt: skip
        done, record = None, ""
        for _ in range(5):  # a move that died half-way is finished by running it again
            done = await anyio.run_process(cmd, env=env, cwd=ROOT, check=False)
            record = await self.retrying(self.record)
            if done.returncode == 0 or ">" not in record:
                break
            await anyio.sleep(1)
        if done is not None and done.returncode != 0:
            out = (done.stdout + done.stderr).decode(errors="replace").strip()[-300:]
            self.skipped.append(f"{f.describe()}: repartition exited {done.returncode}: {out}")
        return record == str(new)

    async def rolling_restart(self, *, wait_new: bool = False) -> None:
        """Workers with the new count up first, then the old ones SIGTERMed.

        `wait_new`: the old ones only once the new ones have started (bounded), as an
        operator rolls a deployment; otherwise at once, while the new ones start.
        """
        old = [s.proc for s in self.slots]
        for slot in self.slots:
            self.start_in(slot)
        if wait_new:
            with anyio.move_on_after(START_TIMEOUT_S):
                for slot in self.slots:
                    await self.wait_started(slot)
        for proc in old:
            if proc is not None and proc.alive():
                proc.terminate()
        with anyio.move_on_after(30):
            for proc in old:
                while proc is not None and proc.alive():
                    await anyio.sleep(0.05)
                if proc is not None:
                    self.died[proc.pid] = time.monotonic()

    async def heal(self) -> None:
        for slot in self.slots:
            slot.proxy.heal()
        await self.retrying(lambda: self.redis.config_set("maxmemory", 0))
        await self.retrying(lambda: self.redis.execute_command("CLIENT", "UNPAUSE"))
        for proc in self.procs:
            if proc.alive():
                proc.signal(signal.SIGCONT)
        for slot in self.slots:
            if slot.proc is None or not slot.proc.alive():
                if slot.proc is not None:
                    self.died.setdefault(slot.proc.pid, time.monotonic())
                await self.replace(slot)

    async def watch_done(self) -> None:
        """Note each job's first settle_done: a later one (a rerun) overwrites its score."""
        while True:
            with contextlib.suppress(*REDIS_ERRORS):
                await self.poll_done()
            await anyio.sleep(0.1)

    async def poll_done(self) -> None:
        for p in range(self.max_partitions):
            since = self._done_seen.get(p, 0.0)
            rows = await self.redis.zrangebyscore(self.pk(p).done, since, "+inf", withscores=True)
            for member, score in rows:
                self.first_done.setdefault(member.decode(), score / 1000)
                self._done_seen[p] = max(self._done_seen.get(p, 0.0), score)

    # ------------------------------------------------------------------ the end

    async def outcome(self) -> Outcome:
        done_real: dict[str, float] = {}
        dead: dict[str, str] = {}
        leftover: Counter[str] = Counter()
        for p in range(self.max_partitions):
            k = self.pk(p)
            for member, score in await self.redis.zrange(k.done, 0, -1, withscores=True):
                job = member.decode()
                done_real[job] = max(done_real.get(job, 0.0), score / 1000)
            for _, fields in await self.redis.xrange(k.dlq):
                dead[fields.get(b"id", b"?").decode()] = fields.get(b"reason", b"").decode()
            leftover["ready"] += await self.redis.xlen(k.ready)
            leftover["delayed"] += await self.redis.zcard(k.delayed)
            with contextlib.suppress(RedisError):
                leftover["pending"] += int((await self.redis.xpending(k.ready, GROUP))["pending"])
        dups = {self.s.job_id(n) for f in self.s.faults if f.kind == "dup" for n in f.jobs}
        for job, first in self.first_done.items():  # the first, except for duplicate entries
            if job in done_real and job not in dups:
                done_real[job] = min(first, done_real[job])
        shift = time.time() - time.monotonic()  # one host: Redis's TIME is this wall clock
        done = {job: t - shift for job, t in done_real.items()}
        return Outcome(done=done, dead=dead, leftover=dict(leftover))

    async def dump(self, path: Path) -> None:
        """What the queue holds at the end (kept with --keep, for a failing seed)."""
        lines = []
        for p in range(self.max_partitions):
            k = self.pk(p)
            lines.append(f"partition {p} ready {await self.redis.xrange(k.ready)}")
            with contextlib.suppress(RedisError):
                pending = await self.redis.xpending_range(k.ready, GROUP, "-", "+", 100)
                lines.append(f"partition {p} pending {pending}")
            lines.append(f"partition {p} delayed {await self.redis.zrange(k.delayed, 0, -1)}")
            lines.append(f"partition {p} jobs {await self.redis.hgetall(k.jobs)}")
            locks = [
                x async for x in self.redis.scan_iter(match=k.lock("").replace("[", "\\[") + "*")
            ]
            lines += [f"lock {x!r} = {await self.redis.get(x)!r}" for x in locks]
        await anyio.Path(path).write_text("\n".join(lines) + "\n")

    async def drained(self) -> bool:
        ids = {self.s.job_id(n) for n in range(self.s.options.jobs)}
        out = await self.outcome()
        return ids <= set(out.done) | set(out.dead) and not any(out.leftover.values())


async def run_schedule(s: Schedule, *, keep: Path | None = None) -> Result:
    workdir = keep or Path(tempfile.mkdtemp(prefix=f"tgw-faultcheck-{s.seed}-"))
    state = ScheduleRun(s, workdir)
    started = time.monotonic()
    drained = False
    try:
        await state.open()
        state.t0 = time.monotonic()
        async with anyio.create_task_group() as watching:
            watching.start_soon(state.watch_done)
            async with anyio.create_task_group() as tg:
                tg.start_soon(state.produce)
                for f in s.faults:
                    tg.start_soon(state.fault, f)
            await state.heal()
            with anyio.move_on_after(DRAIN_TIMEOUT_S):
                while not await state.retrying(state.drained):
                    await anyio.sleep(0.2)
                drained = True
            await state.retrying(state.poll_done)
            watching.cancel_scope.cancel()
        outcome = await state.retrying(state.outcome)
        if keep is not None:
            await state.dump(keep / "redis.txt")
    finally:
        await state.close(keep=keep is not None)
    runs, handler_stalls = load_runs(state.history, state.died)
    jobs = _jobs(s)
    verdict = check(History(jobs=jobs, runs=runs, stalls=state.stalls + handler_stalls,
                            outcome=outcome))  # fmt: skip
    if keep is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return Result(
        seed=s.seed, kinds=s.kinds(), jobs=len(jobs), runs=len(runs),
        seconds=round(time.monotonic() - started, 1), verdict=verdict, skipped=state.skipped,
        t0=state.t0, drained=drained,
    )  # fmt: skip


def _jobs(s: Schedule) -> list[Job]:
    dups = {n for f in s.faults if f.kind == "dup" for n in f.jobs}
    return [
        Job(n=n, job_id=s.job_id(n), key=s.payloads[n].key, entries=2 if n in dups else 1)
        for n in range(s.options.jobs)
    ]


def offending(result: Result, limit: int = 12) -> str:
    """The violations of a result, with their runs, times from the schedule's start."""
    lines = [v.describe(result.t0) for v in result.verdict.violations[:limit]]
    if (more := len(result.verdict.violations) - limit) > 0:
        lines.append(f"… and {more} more")
    return "\n".join(lines)


__all__ = ["Result", "Run", "offending", "run_schedule"]
