"""The console's pages and the fragments htmx polls: overview, queue, job, DLQ, and more.

Each handler reads through the engine services (the ones the admin API and the
CLI use) and renders one template. A fragment route renders only the part of a
page that htmx replaces every few seconds.
"""

from __future__ import annotations

import time
from typing import Any, Final
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from tgworkers.engine.ops.browse import Kind
from tgworkers.engine.ops.dlq_search import search as search_dlq
from tgworkers.engine.ops.history import MINUTE_MS
from tgworkers.engine.ops.stats import QueueStats
from tgworkers.http.admin import audit_cursor, cursor_param, dlq_filter, known_queue, services
from tgworkers.http.console.charts import rate_chart
from tgworkers.http.console.web import Caller, render
from tgworkers.http.limits import BadRequestError, page_limit

PAGE_SIZE: Final = 50
KINDS: Final[tuple[Kind, ...]] = ("ready", "delayed", "inflight")


async def charts(request: Request, queues: list[str]) -> dict[str, Any]:
    now = int(time.time() * 1000)
    day = await services(request).history.series(queues, since_ms=now - 24 * 60 * MINUTE_MS)
    hour = [p for p in day if p.minute >= now - 60 * MINUTE_MS]
    return {
        "hour": rate_chart(hour, now_ms=now, minutes=60, bin_minutes=1, label="last hour"),
        "day": rate_chart(day, now_ms=now, minutes=24 * 60, bin_minutes=15, label="last day"),
    }


async def overview(request: Request, caller: Caller) -> Response:
    doc = await services(request).stats.snapshot()
    names = [q.name for q in doc.queues]
    return render(request, caller, "overview.html", doc=doc, charts=await charts(request, names))


async def queues_fragment(request: Request, caller: Caller) -> Response:
    doc = await services(request).stats.snapshot()
    return render(request, caller, "_queues.html", doc=doc)


async def charts_fragment(request: Request, caller: Caller) -> Response:
    queue = request.query_params.get("queue")
    names = [known_queue(request, queue)] if queue else _all_queues(request)
    return render(request, caller, "_charts.html", charts=await charts(request, names))


def _all_queues(request: Request) -> list[str]:
    return sorted(p.queue for p in services(request).registry.processors.values())


async def queue_stats(request: Request, queue: str) -> QueueStats:
    doc = await services(request).stats.snapshot()
    return next(q for q in doc.queues if q.name == queue)


async def queue_page(request: Request, caller: Caller) -> Response:
    queue = known_queue(request)
    search = request.query_params.get("q", "").strip()
    if search:
        return RedirectResponse(
            f"/ui/queues/{queue}/jobs/{quote(search, safe='')}", status_code=303
        )
    kind = request.query_params.get("kind", "ready")
    if kind not in KINDS:
        raise BadRequestError(f"kind: expected one of {', '.join(KINDS)}, got {kind!r}")
    limit = page_limit(request, default=PAGE_SIZE)
    cursor = cursor_param(request, "due" if kind == "delayed" else "entry")
    jobs = await services(request).browser.page(queue, kind, limit=limit, cursor=cursor)
    return render(
        request, caller, "queue.html", queue=queue, stats=await queue_stats(request, queue),
        kind=kind, kinds=KINDS, jobs=jobs, limit=limit,
        charts=await charts(request, [queue]),
    )  # fmt: skip


async def queue_fragment(request: Request, caller: Caller) -> Response:
    queue = known_queue(request)
    return render(request, caller, "_queue_stats.html", queue=queue,
                  stats=await queue_stats(request, queue))  # fmt: skip


def _here(request: Request) -> str:
    """This page's own URL (path and query, without the last action's note) for its polls."""
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "said"]
    return request.url.path + ("?" + urlencode(query) if query else "")


async def job_page(request: Request, caller: Caller) -> Response:
    queue = known_queue(request)
    job_id: str = request.path_params["job_id"]
    job = await services(request).browser.find(queue, job_id)
    template: str | None = request.app.state.http.trace_url_template
    trace_url = (
        template.replace("{traceId}", job.trace_id) if job and job.trace_id and template else None
    )
    status = 200 if job or request.headers.get("hx-request") else 404  # htmx swaps only a 2xx
    return render(request, caller, "job.html", status=status, queue=queue, job_id=job_id,
                  job=job, trace_url=trace_url, here=_here(request))  # fmt: skip


async def dlq_page(request: Request, caller: Caller) -> Response:
    queue = known_queue(request)
    search = request.query_params.get("q", "").strip()
    if search:
        return RedirectResponse(
            f"/ui/queues/{queue}/jobs/{quote(search, safe='')}", status_code=303
        )
    limit = page_limit(request, default=PAGE_SIZE)
    flt, sort = dlq_filter(request)  # issue 26: filters and sortable columns
    dlq, cursor = services(request).dlq, cursor_param(request)
    if flt.active or sort:
        doc = await search_dlq(dlq, queue, flt, limit=limit, cursor=cursor, sort=sort)
    else:
        doc = await dlq.list_jobs(queue, limit=limit, cursor=cursor)
    names = sorted(jt.name for jt in services(request).registry.queue(queue).job_types)
    return render(request, caller, "dlq.html", queue=queue, doc=doc, limit=limit, flt=flt,
                  sort=sort or "", names=names, here=_here(request))  # fmt: skip


async def dlq_export(request: Request, _: Caller) -> Response:
    queue = known_queue(request)
    headers = {"content-disposition": f'attachment; filename="{queue}-dlq.jsonl"'}
    return StreamingResponse(services(request).dlq.export(queue),
                             media_type="application/x-ndjson", headers=headers)  # fmt: skip


async def schedules_page(request: Request, caller: Caller) -> Response:
    doc = await services(request).schedules.read()
    return render(request, caller, "schedules.html", schedules=doc.schedules)


async def workers_page(request: Request, caller: Caller) -> Response:
    rows = await services(request).workers.rows()
    return render(request, caller, "workers.html", workers=rows)


async def audit_page(request: Request, caller: Caller) -> Response:
    limit = page_limit(request, default=PAGE_SIZE)
    doc = await services(request).audit.page(limit=limit, before=audit_cursor(request))
    return render(request, caller, "audit.html", page=doc, limit=limit)
