"""The embedded uvicorn server and the two tasks that run beside it.

uvicorn's own signal capture is turned off: the worker owns SIGTERM/SIGINT and
its graceful drain. The launcher (`tgworkers.bootstrap.launcher`) runs the server,
the stats sampler and the info publisher beside the worker and stops the server
only after the worker has stopped, so `/healthz` and `/readyz` keep answering
during the drain.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Generator
from typing import Final

import anyio
import structlog
import uvicorn

from tgworkers import __version__
from tgworkers.engine.ops import EngineServices
from tgworkers.engine.ops.workers_view import WorkerInfo, publish_info
from tgworkers.engine.runtime.worker import Worker
from tgworkers.engine.wire.connection import RedisHealth, guarded
from tgworkers.http.app import create_app
from tgworkers.http.health import HealthProbe
from tgworkers.http.settings import HttpSettings

log = structlog.get_logger("tgworkers.http")

SAMPLER_EVERY_S: Final = 20.0


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to its host."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def embedded_server(
    services: EngineServices, probe: HealthProbe, settings: HttpSettings, port: int
) -> EmbeddedServer:
    """The server `run` serves on `PORT`; `ConfigError` now if `ADMIN_TRUSTED_JWKS` is bad."""
    app = create_app(services, probe, settings)
    config = uvicorn.Config(
        app,
        host="0.0.0.0",  # noqa: S104
        port=port,
        log_config=None,
        access_log=False,
        lifespan="off",
        server_header=False,
    )
    return EmbeddedServer(config)


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
