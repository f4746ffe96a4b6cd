"""The ASGI app: health and metrics open, admin API and console behind auth.

Built from engine services and a health probe, so tests drive it through
`httpx.ASGITransport` against real Redis exactly as `run` serves it.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tgworkers.engine.ops import CONNECTION_ERRORS, EngineServices
from tgworkers.http import admin, admin_controls, health, metrics
from tgworkers.http.auth import AdminAuth
from tgworkers.http.console.routes import ROUTES as CONSOLE_ROUTES
from tgworkers.http.console.session import SessionStore
from tgworkers.http.console.web import SecurityHeaders
from tgworkers.http.settings import HttpSettings


async def redis_unavailable(_: Request, __: Exception) -> Response:
    return JSONResponse({"error": "redis unavailable"}, status_code=503)


def create_app(
    services: EngineServices, probe: health.HealthProbe, settings: HttpSettings
) -> Starlette:
    """The app `run` serves on `PORT`; `ConfigError` if `ADMIN_TRUSTED_JWKS` is bad."""
    routes = [
        Route("/healthz", health.healthz, methods=["GET"]),
        Route("/readyz", health.readyz, methods=["GET"]),
        Route("/metrics", metrics.metrics, methods=["GET"]),
        *admin.ROUTES,
        *admin_controls.ROUTES,
        *CONSOLE_ROUTES,
    ]
    handlers = dict.fromkeys(CONNECTION_ERRORS, redis_unavailable)
    app = Starlette(
        routes=routes, exception_handlers=handlers, middleware=[Middleware(SecurityHeaders)]
    )
    app.state.services = services
    app.state.probe = probe
    app.state.auth = AdminAuth(settings)
    app.state.http = settings
    app.state.sessions = SessionStore(services.redis, services.layout.globals, settings)
    token = settings.metrics_token
    app.state.metrics_token = token.reveal().encode() if token is not None else None
    return app
