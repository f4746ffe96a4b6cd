"""`/admin/v1/...`: queue stats and controls, enqueue, DLQ and schedules.

Every route is wrapped by `guarded`: no valid bearer token means 401 before
anything is read or changed. Unknown queues and job types answer 404, bad bodies
422, a Redis outage 503; each answer is a JSON object with `error`. Every
mutating call logs one `admin.audit` event naming who (token kind and JWT sub),
what, the queue and the counts; never the token.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tgworkers.engine.connection import CONNECTION_ERRORS
from tgworkers.errors import InputError
from tgworkers.http.auth import AdminAuth, Principal
from tgworkers.http.services import EngineServices

log = structlog.get_logger("tgworkers.admin")

Handler = Callable[[Request, Principal], Awaitable[Response]]


class NotFoundError(InputError):
    """An unknown queue or job type in the path (404)."""


class DrainBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`POST .../drain` body: `{"delayed": bool}` (optional)."""

    delayed: bool = False


class EnqueueBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`POST /admin/v1/jobs/{name}` body: `{"payload": {...}, "id"?, "runAt"?}`."""

    payload: dict[str, Any]
    id: str | None = None
    runAt: int | None = None  # noqa: N815 - the contract's field name


class SelectionBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """DLQ requeue/drop body: `{"ids": [...]}` or `{"all": true}`, `resetAttempts`."""

    ids: list[str] | None = None
    all: bool = False
    resetAttempts: bool = False  # noqa: N815 - the contract's field name

    def targets(self) -> list[str] | None:
        if self.all == (self.ids is not None):
            raise InputError('name the jobs: exactly one of {"ids": [...]} or {"all": true}')
        return self.ids


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def guarded(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Authenticate first; map user errors and outages to JSON answers."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        auth: AdminAuth = request.app.state.auth
        principal = auth.authenticate(request.headers.get("authorization"))
        if principal is None:
            return JSONResponse(
                {"error": "unauthorized"}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
        try:
            return await handler(request, principal)
        except BaseException as exc:
            cause = leaf(exc)
            if isinstance(cause, NotFoundError):
                return error(404, str(cause))
            if isinstance(cause, InputError):
                return error(422, str(cause))
            if isinstance(cause, CONNECTION_ERRORS):
                return error(503, "redis unavailable")
            raise

    return endpoint


def services(request: Request) -> EngineServices:
    svc: EngineServices = request.app.state.services
    return svc


def known_queue(request: Request) -> str:
    queue: str = request.path_params["queue"]
    try:
        services(request).registry.queue(queue)
    except InputError as exc:
        raise NotFoundError(str(exc)) from None
    return queue


async def body_of(request: Request, kind: type[Any]) -> Any:
    raw = await request.body()
    try:
        return msgspec.json.decode(raw or b"{}", type=kind)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise InputError(f"bad request body: {exc}") from None


def audit(principal: Principal, action: str, **details: Any) -> None:
    log.info("admin.audit", who=principal.kind, subject=principal.subject, action=action,
             **details)  # fmt: skip


def json_of(value: Any, status: int = 200) -> Response:
    return Response(msgspec.json.encode(value), status_code=status, media_type="application/json")


async def queues(request: Request, _: Principal) -> Response:
    return json_of(await services(request).stats.snapshot())


async def set_paused(request: Request, who: Principal, *, paused: bool) -> Response:
    queue = known_queue(request)
    state = await services(request).control.set_paused(queue, paused=paused)
    audit(who, "pause" if paused else "resume", queue=queue)
    return json_of(state)


async def drain(request: Request, who: Principal) -> Response:
    queue = known_queue(request)
    body: DrainBody = await body_of(request, DrainBody)
    result = await services(request).control.drain(queue, delayed=body.delayed)
    audit(who, "drain", queue=queue, removed_ready=result.removed_ready,
          removed_delayed=result.removed_delayed)  # fmt: skip
    return json_of(result)


async def enqueue(request: Request, who: Principal) -> Response:
    name: str = request.path_params["name"]
    svc = services(request)
    try:
        svc.registry.job_type(name)
    except InputError as exc:
        raise NotFoundError(str(exc)) from None
    body: EnqueueBody = await body_of(request, EnqueueBody)
    result = await svc.client.enqueue(
        name, body.payload, id=body.id, run_at_ms=body.runAt, origin=f"admin:{who.subject}"
    )
    audit(who, "enqueue", job=name, queue=result.queue, job_id=result.id, created=result.created)
    return json_of(result, 201 if result.created else 200)


async def dlq_list(request: Request, _: Principal) -> Response:
    queue = known_queue(request)
    raw_limit = request.query_params.get("limit", "100")
    if not raw_limit.isdigit():
        raise InputError(f"limit: expected a number >= 0, got {raw_limit!r}")
    return json_of(await services(request).dlq.list_jobs(queue, limit=int(raw_limit)))


async def dlq_requeue(request: Request, who: Principal) -> Response:
    queue = known_queue(request)
    body: SelectionBody = await body_of(request, SelectionBody)
    result = await services(request).dlq.requeue(
        queue, body.targets(), reset_attempts=body.resetAttempts, by=f"admin:{who.subject}"
    )
    audit(who, "dlq.requeue", queue=queue, requeued=result["requeued"],
          skipped=len(result["skipped"]), all=body.all)  # fmt: skip
    return json_of(result)


async def dlq_drop(request: Request, who: Principal) -> Response:
    queue = known_queue(request)
    body: SelectionBody = await body_of(request, SelectionBody)
    result = await services(request).dlq.drop(queue, body.targets())
    audit(who, "dlq.drop", queue=queue, dropped=result["dropped"], all=body.all)
    return json_of(result)


async def dlq_export(request: Request, _: Principal) -> Response:
    queue = known_queue(request)
    lines = services(request).dlq.export(queue)
    return StreamingResponse(lines, media_type="application/x-ndjson")


async def schedules(request: Request, _: Principal) -> Response:
    return json_of(await services(request).schedules.read())


ROUTES = [
    Route("/admin/v1/queues", guarded(queues), methods=["GET"]),
    Route("/admin/v1/queues/{queue}/pause",
          guarded(functools.partial(set_paused, paused=True)), methods=["POST"]),
    Route("/admin/v1/queues/{queue}/resume",
          guarded(functools.partial(set_paused, paused=False)), methods=["POST"]),
    Route("/admin/v1/queues/{queue}/drain", guarded(drain), methods=["POST"]),
    Route("/admin/v1/jobs/{name}", guarded(enqueue), methods=["POST"]),
    Route("/admin/v1/dlq/{queue}", guarded(dlq_list), methods=["GET"]),
    Route("/admin/v1/dlq/{queue}/requeue", guarded(dlq_requeue), methods=["POST"]),
    Route("/admin/v1/dlq/{queue}/drop", guarded(dlq_drop), methods=["POST"]),
    Route("/admin/v1/dlq/{queue}/export", guarded(dlq_export), methods=["GET"]),
    Route("/admin/v1/schedules", guarded(schedules), methods=["GET"]),
]  # fmt: skip
