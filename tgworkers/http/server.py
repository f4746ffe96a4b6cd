"""Serve the app with uvicorn in the worker's event loop, for as long as it runs.

uvicorn's own signal capture is turned off: the worker owns SIGTERM/SIGINT and
its graceful drain, and the server stops only after the worker has stopped, so
`/healthz` and `/readyz` keep answering during the drain.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator

import anyio
import structlog
import uvicorn

from tgworkers.engine.worker import Worker
from tgworkers.http.app import create_app
from tgworkers.http.health import HealthProbe
from tgworkers.http.services import EngineServices
from tgworkers.http.settings import HttpSettings

log = structlog.get_logger("tgworkers.http")


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


async def run_with_server(worker: Worker, server: EmbeddedServer | None, port: int | None) -> None:
    """Run the worker and, when there is one, the HTTP server beside it."""
    if server is None:
        await worker.run()
        return
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        log.info("http.started", port=port)
        await worker.run()
        server.should_exit = True
    log.info("http.stopped", port=port)
