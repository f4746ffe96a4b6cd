"""The console's single-job and schedule actions (cancel, delete, run now; pause a schedule).

Each is the admin API's action (`admin_controls.act`: same service, same audit
entry with `via=console`) behind the console's guard (role `admin`, CSRF token);
it answers 303 to the job's page, where the job's new state shows (the queue's
page after a delete). A job in the wrong state shows the error page (409).
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from tgworkers.engine.ops.job_actions import JobStateError
from tgworkers.http.admin import known_queue, services
from tgworkers.http.admin_controls import (
    act,
    run_schedule_action,
    search_finished,
)
from tgworkers.http.console.web import Caller, refused, render


async def job_action(request: Request, caller: Caller) -> Response:
    queue, job_id = known_queue(request), request.path_params["job_id"]
    op = request.url.path.rsplit("/", 1)[-1]
    actions = services(request).jobs
    runs = {
        "cancel": lambda: actions.cancel(queue, job_id, by=f"console:{caller.principal.who}"),
        "delete": lambda: actions.delete(queue, job_id),
        "run-now": lambda: actions.run_now(queue, job_id),
    }
    try:
        await act(request, caller.principal, op.replace("-", "_"), runs[op])
    except JobStateError as exc:
        return refused(request, caller, 409, str(exc))
    if op == "delete":
        return RedirectResponse(f"/ui/queues/{queue}", status_code=303)
    return RedirectResponse(f"/ui/queues/{queue}/jobs/{quote(job_id, safe='')}", status_code=303)


async def finished_page(request: Request, caller: Caller) -> Response:
    """Finished jobs by id prefix (`?prefix=`), with when, attempt and trace."""
    prefix = request.query_params.get("prefix", "").strip()
    page = await search_finished(request) if prefix else None
    template: str | None = request.app.state.http.trace_url_template
    sort = request.query_params.get("sort") or ""
    return render(request, caller, "finished.html", prefix=prefix, page=page,
                  trace_template=template, sort=sort)  # fmt: skip


async def schedule_action(request: Request, caller: Caller) -> Response:
    """Pause, resume or run one schedule now, then back to the Schedules page."""
    name: str = request.path_params["name"]
    op = request.url.path.rsplit("/", 1)[-1]
    await run_schedule_action(request, caller.principal, name, op)
    return RedirectResponse("/ui/schedules", status_code=303)
