"""The console's route table (`/ui/...`, and `/` as its front door)."""

from __future__ import annotations

from pathlib import Path

from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from tgworkers.http.console import actions, job_actions, views
from tgworkers.http.console.web import page

STATIC = Path(__file__).resolve().parent.parent / "static"


async def front_door(_: object) -> Response:
    return RedirectResponse("/ui/", status_code=307)


ROUTES: list[BaseRoute] = [
    Route("/", front_door, methods=["GET"]),
    Route("/ui", front_door, methods=["GET"]),
    Mount("/ui/static", app=StaticFiles(directory=STATIC), name="static"),
    Route("/ui/login", actions.login_form, methods=["GET"]),
    Route("/ui/login", actions.login, methods=["POST"]),
    Route("/ui/login/link", actions.login_link, methods=["GET"]),
    Route("/ui/logout", page(actions.logout, change=True, any_role=True), methods=["POST"]),
    Route("/ui/", page(views.overview), methods=["GET"]),
    Route("/ui/fragments/queues", page(views.queues_fragment), methods=["GET"]),
    Route("/ui/fragments/charts", page(views.charts_fragment), methods=["GET"]),
    Route("/ui/queues/{queue}", page(views.queue_page), methods=["GET"]),
    Route("/ui/queues/{queue}/fragment", page(views.queue_fragment), methods=["GET"]),
    *[Route(f"/ui/queues/{{queue}}/jobs/{{job_id:path}}/{op}",
            page(job_actions.job_action, change=True), methods=["POST"])
      for op in ("cancel", "delete", "run-now")],
    Route("/ui/queues/{queue}/jobs/{job_id:path}", page(views.job_page), methods=["GET"]),
    Route("/ui/queues/{queue}/pause", page(actions.set_paused, change=True), methods=["POST"]),
    Route("/ui/queues/{queue}/resume", page(actions.set_paused, change=True), methods=["POST"]),
    Route("/ui/queues/{queue}/drain", page(actions.drain, change=True), methods=["POST"]),
    Route("/ui/queues/{queue}/dlq", page(views.dlq_page), methods=["GET"]),
    Route("/ui/queues/{queue}/dlq/export", page(views.dlq_export), methods=["GET"]),
    Route("/ui/queues/{queue}/dlq/requeue", page(actions.dlq_action, change=True),
          methods=["POST"]),
    Route("/ui/queues/{queue}/dlq/drop", page(actions.dlq_action, change=True), methods=["POST"]),
    Route("/ui/queues/{queue}/dlq/selection", page(actions.dlq_action, change=True),
          methods=["POST"]),
    Route("/ui/finished", page(job_actions.finished_page), methods=["GET"]),
    Route("/ui/schedules", page(views.schedules_page), methods=["GET"]),
    *[Route(f"/ui/schedules/{{name}}/{op}", page(job_actions.schedule_action, change=True),
            methods=["POST"]) for op in ("pause", "resume", "run-now")],
    Route("/ui/workers", page(views.workers_page), methods=["GET"]),
    Route("/ui/audit", page(views.audit_page), methods=["GET"]),
]  # fmt: skip
