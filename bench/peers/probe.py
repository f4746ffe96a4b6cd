"""The instrumentation every system's worker shares, so all are measured the same way.

A handler calls `gate_sync()`/`await gate_async()` and then `done()` (no-op jobs) or
`timed(t)` (latency jobs). The first job of a process announces it is ready in the control
Redis and waits for `bench:go`, so start-up (interpreter, imports, connecting, group
creation) is excluded from the drain. A reporter thread writes the process's job count,
the time of its last job and any new lateness samples to the control Redis every 20 ms:
the control Redis is a second server, so none of this traffic is counted against the
system under test.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time

import redis

CTL_URL_ENV = "BENCH_CTL_URL"
GO_KEY = "bench:go"
READY_KEY = "bench:ready"
PROG_KEY = "bench:prog"  # hash: pid -> "count last_job_time"
SAMPLES_KEY = "bench:samples"  # list of lateness in ms

_go = threading.Event()
_gate_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_async_go: asyncio.Event | None = None
_count = 0
_last = 0.0
_samples: list[float] = []
_started = False


def done() -> None:
    global _count, _last  # noqa: PLW0603 - one counter per process, read by the reporter
    _count += 1
    _last = time.time()


def done_many(n: int) -> None:
    global _count, _last  # noqa: PLW0603
    _count += n
    _last = time.time()


def timed(t: float) -> None:
    """A latency job: `t` is the enqueue (or due) time; t < 0 marks a warm-up job."""
    now = time.time()
    if not _started:
        start()
    if t >= 0:
        _samples.append((now - t) * 1000)
    done()


def gate_sync() -> None:
    if _go.is_set():
        return
    start()
    with _gate_lock:
        _ctl().hset(READY_KEY, str(os.getpid()), "1")
        _go.wait()


async def gate_async() -> None:
    global _loop, _async_go
    if _go.is_set():
        return
    start()
    if _async_go is None:
        _loop, _async_go = asyncio.get_running_loop(), asyncio.Event()
        _ctl().hset(READY_KEY, str(os.getpid()), "1")
        if _go.is_set():
            _async_go.set()
    await _async_go.wait()


def _ctl() -> redis.Redis:
    return redis.Redis.from_url(os.environ[CTL_URL_ENV])


def _report(ctl: redis.Redis) -> None:
    pid, sent = str(os.getpid()), 0
    while True:
        if not _go.is_set():
            if ctl.exists(GO_KEY):
                _go.set()
                if _loop is not None and _async_go is not None:
                    _loop.call_soon_threadsafe(_async_go.set)
            time.sleep(0.001)
            continue
        pipe = ctl.pipeline(transaction=False)
        pipe.hset(PROG_KEY, pid, f"{_count} {_last}")
        new = _samples[sent:]
        if new:
            pipe.rpush(SAMPLES_KEY, *(f"{x:.3f}" for x in new))
            sent += len(new)
        pipe.execute()
        time.sleep(0.02)


def start() -> None:
    """Start the reporter thread once (called at import by each worker module)."""
    global _started  # noqa: PLW0603
    if _started:
        return
    _started = True
    threading.Thread(target=_report, args=(_ctl(),), daemon=True, name="bench-probe").start()
