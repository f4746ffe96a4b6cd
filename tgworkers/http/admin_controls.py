"""`/admin/v1/...` controls of issue 26: shared rate limits (read), single-job actions.

Kept apart from `admin.py` (the queue, DLQ and schedule routes) and built on its
helpers: the same guard, roles, error answers and audit entry for every change.
A job in the wrong state for an action answers 409 naming where it is and what
to do instead; an unknown job 404.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tgworkers.engine.ops.finished import FinishedPage, sort_field
from tgworkers.engine.ops.job_actions import (
    JobActionResult,
    JobNotFoundError,
    JobStateError,
)
from tgworkers.engine.ops.rates import read_limits
from tgworkers.engine.ops.schedule_controls import (
    ScheduleNotFoundError,
    ScheduleState,
)
from tgworkers.errors import InputError
from tgworkers.http.admin import (
    NotFoundError,
    audit,
    body_of,
    error,
    guarded,
    json_of,
    known_queue,
    services,
)
from tgworkers.http.auth import Principal
from tgworkers.http.limits import BadRequestError, page_limit


async def act(
    request: Request, who: Principal, action: str, run: Callable[[], Awaitable[JobActionResult]]
) -> JobActionResult:
    """Run one job action and audit it; `NotFoundError` (404) for an unknown job."""
    queue, job_id = known_queue(request), request.path_params["job_id"]
    try:
        result = await run()
    except JobNotFoundError as exc:
        raise NotFoundError(str(exc)) from None
    await audit(request, who, f"job.{action}", f"{queue}/{job_id}", queue=queue, job_id=job_id,
                state=result.state)  # fmt: skip
    return result


async def _answer(
    request: Request, who: Principal, action: str, run: Callable[[], Awaitable[JobActionResult]]
) -> Response:
    try:
        return json_of(await act(request, who, action, run))
    except JobStateError as exc:
        return error(409, str(exc))


async def cancel(request: Request, who: Principal) -> Response:
    queue, job_id = known_queue(request), request.path_params["job_id"]
    by = f"{'console' if who.kind == 'session' else 'admin'}:{who.subject}"
    return await _answer(
        request, who, "cancel", lambda: services(request).jobs.cancel(queue, job_id, by=by)
    )


async def delete(request: Request, who: Principal) -> Response:
    queue, job_id = known_queue(request), request.path_params["job_id"]
    return await _answer(
        request, who, "delete", lambda: services(request).jobs.delete(queue, job_id)
    )


async def run_now(request: Request, who: Principal) -> Response:
    queue, job_id = known_queue(request), request.path_params["job_id"]
    return await _answer(
        request, who, "run_now", lambda: services(request).jobs.run_now(queue, job_id)
    )


async def requeue(request: Request, who: Principal) -> Response:
    """Body `{"resetAttempts"?: bool}` (optional); 409 when the job is not dead-lettered."""
    queue, job_id = known_queue(request), request.path_params["job_id"]
    body: RequeueBody = await body_of(request, RequeueBody)
    by = f"{'console' if who.kind == 'session' else 'admin'}:{who.subject}"
    return await _answer(
        request, who, "requeue",
        lambda: services(request).jobs.requeue(queue, job_id, by=by,
                                             reset_attempts=body.resetAttempts),
    )  # fmt: skip


class RequeueBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`POST .../jobs/{id}/requeue` body: `{"resetAttempts": bool}` (optional)."""

    resetAttempts: bool = False  # noqa: N815 - as the DLQ's requeue body


async def show(request: Request, _: Principal) -> Response:
    """One live job (ready, in flight, delayed or dead) as the console's job page shows it."""
    queue, job_id = known_queue(request), request.path_params["job_id"]
    svc = services(request)
    job = await svc.browser.find(queue, job_id)
    if job is None:
        return error(404, f"no job {job_id!r} in {queue} (finished jobs are not kept)")
    return json_of(job)


async def limits(request: Request, _: Principal) -> Response:
    """`{"limits": [{"scope", "name", "perS", "allowed", "waited", "refused"}]}`."""
    svc = services(request)
    queue_of = {p.env_name: p.queue for p in svc.registry.processors.values()}
    return json_of({"limits": await read_limits(svc.client.redis, svc.settings, queue_of)})


async def schedule_action(request: Request, who: Principal) -> Response:
    """`POST /admin/v1/schedules/{name}/pause|resume|run-now` (audited `schedule.<action>`)."""
    name: str = request.path_params["name"]
    op = request.url.path.rsplit("/", 1)[-1]
    state = await run_schedule_action(request, who, name, op)
    return json_of(state)


async def run_schedule_action(
    request: Request, who: Principal, name: str, op: str
) -> ScheduleState:
    controls = services(request).schedule_controls
    by = f"{'console' if who.kind == 'session' else 'admin'}:{who.subject}"
    try:
        if op == "pause":
            state = await controls.pause(name, by=by)
        elif op == "resume":
            state = await controls.resume(name)
        else:
            state = await controls.run_now(name, by=by)
    except ScheduleNotFoundError as exc:
        raise NotFoundError(str(exc)) from None
    await audit(request, who, f"schedule.{op.replace('-', '_')}", name, schedule=name,
                job_id=state.job_id)  # fmt: skip
    return state


async def search_finished(request: Request) -> FinishedPage:
    """`?prefix=…&queue=…&limit=N`: finished jobs whose id starts with `prefix`."""
    prefix = request.query_params.get("prefix", "").strip()
    queue = request.query_params.get("queue") or None
    if queue is not None:
        known_queue(request, queue)
    limit, sort = page_limit(request), request.query_params.get("sort") or None
    try:
        sort_field(sort)
    except InputError as exc:
        raise BadRequestError(str(exc)) from None
    return await services(request).finished.search(prefix, queue=queue, limit=limit, sort=sort)


async def finished(request: Request, _: Principal) -> Response:
    """`GET /admin/v1/finished`: `{"items": [...], "prefix", "limit"}`."""
    return json_of(await search_finished(request))


JOB = "/admin/v1/queues/{queue}/jobs/{job_id:path}"

ROUTES = [
    Route("/admin/v1/limits", guarded(limits), methods=["GET"]),
    Route("/admin/v1/finished", guarded(finished), methods=["GET"]),
    *[
        Route(
            f"/admin/v1/schedules/{{name}}/{op}",
            guarded(schedule_action, change=True),
            methods=["POST"],
        )
        for op in ("pause", "resume", "run-now")
    ],
    Route(f"{JOB}/cancel", guarded(cancel, change=True), methods=["POST"]),
    Route(f"{JOB}/run-now", guarded(run_now, change=True), methods=["POST"]),
    Route(f"{JOB}/requeue", guarded(requeue, change=True), methods=["POST"]),
    Route(JOB, guarded(delete, change=True), methods=["DELETE"]),
    Route(JOB, guarded(show), methods=["GET"]),
]
