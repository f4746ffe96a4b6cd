"""The two loops the launcher runs beside the HTTP server: the stats sampler and the info publisher.

They write what the console reads (minute buckets, this worker's row on the Workers
page), so they run only in a process that serves HTTP; but they read the worker this
process built and run under its Redis health (`guarded`), which is process assembly,
not HTTP: they live here, beside the launcher that starts them, and `tgworkers.http`
stays on the operator API (tests/unit/test_layering.py).
"""

from __future__ import annotations

import socket
import time
from typing import Final

import anyio

from tgworkers import __version__
from tgworkers.engine.ops import EngineServices
from tgworkers.engine.ops.workers_view import WorkerInfo, publish_info
from tgworkers.engine.runtime.worker import Worker
from tgworkers.engine.wire.connection import RedisHealth, guarded

SAMPLER_EVERY_S: Final = 20.0


async def publish_self(worker: Worker) -> None:
    """Tell the console's Workers page this worker's version and processors, every 20 s."""
    info = WorkerInfo(
        version=__version__, processors=sorted(p.name for p in worker.processors),
        host=socket.gethostname(), started_ms=int(time.time() * 1000),
    )  # fmt: skip
    await worker.started.wait()
    while True:
        # any Redis error (an outage, OOM at maxmemory) is tracked by the worker's health;
        # the next turn tries again
        await guarded(worker.health, "publish", publish_info,
                      worker.redis, worker.layout, worker.consumer, info)  # fmt: skip
        await anyio.sleep(SAMPLER_EVERY_S)


async def sample_stats(services: EngineServices, health: RedisHealth) -> None:
    """The stats sampler: keeps rate samples and the console's minute buckets current.

    Every worker serving HTTP reads a snapshot every `SAMPLER_EVERY_S`, so the
    charts have a bucket for every minute even when no one is looking; the
    buckets are written at most once a minute per queue whatever the number of
    replicas. Any Redis error skips a turn (tracked by the worker's health).
    """
    while True:
        await anyio.sleep(SAMPLER_EVERY_S)
        await guarded(health, "sampler", services.stats.snapshot)
