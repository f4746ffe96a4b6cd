"""`GET /metrics`: Prometheus text with a few queue gauges from the stats document.

A placeholder until the observability issue exports the OTLP instruments here;
the gauge names already follow `tgworkers_<noun>_<measure>`. When
`METRICS_TOKEN` is set the scrape must send it as a bearer token.
"""

from __future__ import annotations

import hmac
from typing import Final

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from tgworkers.engine.stats import QueueStats

_GAUGES: Final = (
    ("tgworkers_queue_ready", "Jobs waiting to be taken", "ready"),
    ("tgworkers_queue_inflight", "Jobs taken and not yet settled", "inflight"),
    ("tgworkers_queue_delayed", "Jobs waiting for their due time", "delayed"),
    ("tgworkers_queue_dlq", "Dead-lettered jobs", "dlq"),
    ("tgworkers_queue_consumers", "Live consumers", "consumers"),
    ("tgworkers_queue_oldest_ready_age_ms", "Age of the oldest ready job", "oldest_ready_age_ms"),
    ("tgworkers_jobs_processed_total", "Jobs done (total)", "processed"),
    ("tgworkers_jobs_failed_total", "Attempts failed (total)", "failed"),
)


def render(queues: list[QueueStats]) -> str:
    lines = ["# tgworkers metrics"]
    for name, text, attr in _GAUGES:
        kind = "counter" if name.endswith("_total") else "gauge"
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
        lines += [f'{name}{{queue="{q.name}"}} {int(getattr(q, attr))}' for q in queues]
    return "\n".join(lines) + "\n"


def allowed(request: Request) -> bool:
    token = request.app.state.metrics_token
    if token is None:
        return True
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token)


async def metrics(request: Request) -> Response:
    if not allowed(request):
        return JSONResponse({"error": "unauthorized"}, status_code=401)
    doc = await request.app.state.services.stats.snapshot()
    return PlainTextResponse(render(doc.queues), media_type="text/plain; version=0.0.4")
