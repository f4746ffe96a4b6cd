"""`GET /`: a small read-only HTML dashboard of queues, DLQs and schedules.

Server-rendered with a meta refresh: no JavaScript, no CDN, nothing to build.
Same bearer auth as `/admin/v1/`; every value is HTML-escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from typing import Final

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from tgworkers.engine.scheduler import ScheduleRecord
from tgworkers.engine.stats import QueueStats
from tgworkers.http.admin import services
from tgworkers.http.auth import Principal

REFRESH_S: Final = 5
_STYLE: Final = (
    "body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}"
    "td:first-child,th:first-child{text-align:left}.paused{color:#b00}"
)


def _cells(values: Sequence[object], tag: str = "td") -> str:
    return "<tr>" + "".join(f"<{tag}>{escape(str(v))}</{tag}>" for v in values) + "</tr>"


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def queue_table(queues: list[QueueStats]) -> str:
    head = (
        "queue", "ready", "in flight", "delayed", "DLQ", "paused", "consumers",
        "oldest ready (s)", "processed", "failed", "retried", "done/min", "failed/min",
    )  # fmt: skip
    rows = [
        _cells(
            [
                q.name,
                q.ready,
                q.inflight,
                q.delayed,
                q.dlq,
                "PAUSED" if q.paused else "",
                q.consumers,
                f"{q.oldest_ready_age_ms / 1000:.1f}",
                q.processed,
                q.failed,
                q.retried,
                q.rate_per_min.processed,
                q.rate_per_min.failed,
            ]
        )
        for q in queues
    ]
    return "<table>" + _cells(head, "th") + "".join(rows) + "</table>"


def schedule_table(items: list[ScheduleRecord]) -> str:
    if not items:
        return "<p>No schedule has fired yet.</p>"
    head = ["schedule", "expression", "job", "next", "last", "outcome"]
    rows = [
        _cells(
            [s.name, s.expression, s.job, _when(s.next_at), _when(s.last_at), s.last_outcome or "-"]
        )
        for s in items
    ]
    return "<table>" + _cells(head, "th") + "".join(rows) + "</table>"


async def dashboard(request: Request, _: Principal) -> Response:
    svc = services(request)
    doc = await svc.stats.snapshot()
    ledger = await svc.schedules.read()
    dead = [q for q in doc.queues if q.dlq]
    dlq_note = ", ".join(f"{escape(q.name)}: {q.dlq}" for q in dead) or "all empty"
    page = (
        f'<!doctype html><html><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="{REFRESH_S}"><title>tgworkers</title>'
        f"<style>{_STYLE}</style></head><body><h1>tgworkers</h1>"
        f"<p>as of {escape(_when(doc.at))}</p><h2>Queues</h2>{queue_table(doc.queues)}"
        f"<h2>Dead-letter queues</h2><p>{dlq_note}</p>"
        f"<h2>Schedules</h2>{schedule_table(ledger.schedules)}</body></html>"
    )
    return HTMLResponse(page)
