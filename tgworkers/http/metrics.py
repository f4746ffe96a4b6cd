"""`GET /metrics`: the OpenTelemetry instruments as Prometheus text.

The text comes from the Prometheus reader `setup_telemetry` attached to the
process's meter provider (the catalogue is `tgworkers.engine.telemetry.catalogue`). The
queue gauges read a stats snapshot; a scrape refreshes it when it is older than
`DEPTH_MAX_AGE_S`, here in the request, never inside an export callback. When
`METRICS_TOKEN` is set the scrape must send it as a bearer token.
"""

from __future__ import annotations

import hmac
import time
from typing import Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tgworkers.engine.telemetry import recorder as telemetry
from tgworkers.engine.telemetry.setup import prometheus_text

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
DEPTH_MAX_AGE_S: Final = 5.0


def allowed(request: Request) -> bool:
    token = request.app.state.metrics_token
    if token is None:
        return True
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token)


async def metrics(request: Request) -> Response:
    if not allowed(request):
        return JSONResponse({"error": "unauthorized"}, status_code=401)
    state = request.app.state
    if time.monotonic() - getattr(state, "depth_at", -DEPTH_MAX_AGE_S) >= DEPTH_MAX_AGE_S:
        await telemetry.active().refresh_depth(state.services.stats)
        state.depth_at = time.monotonic()
    return Response(prometheus_text(), media_type=CONTENT_TYPE)
