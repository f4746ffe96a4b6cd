"""`/admin/v1/...` controls of issue 26: shared rate limits (read), single-job actions.

Kept apart from `admin.py` (the queue, DLQ and schedule routes) and built on its
helpers: the same guard, roles, error answers and audit entry for every change.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tgworkers.engine.rates import read_limits
from tgworkers.http.admin import guarded, json_of, services
from tgworkers.http.auth import Principal


async def limits(request: Request, _: Principal) -> Response:
    """`{"limits": [{"scope", "name", "perS", "allowed", "waited", "refused"}]}`."""
    svc = services(request)
    queue_of = {p.env_name: p.queue for p in svc.registry.processors.values()}
    return json_of({"limits": await read_limits(svc.client.redis, svc.settings, queue_of)})


ROUTES = [
    Route("/admin/v1/limits", guarded(limits), methods=["GET"]),
]
