"""The embedded uvicorn server.

uvicorn's own signal capture is turned off: the worker owns SIGTERM/SIGINT and
its graceful drain. The launcher (`tgworkers.bootstrap.launcher`) runs the server
beside the worker, with the stats sampler and the info publisher next to it
(`bootstrap/http_upkeep.py`: they read the worker and run under its Redis health),
and stops the server only after the worker has stopped, so `/healthz` and `/readyz`
keep answering during the drain.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator

import structlog
import uvicorn

from tgworkers.engine.ops import EngineServices
from tgworkers.http.app import create_app
from tgworkers.http.health import HealthProbe
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
