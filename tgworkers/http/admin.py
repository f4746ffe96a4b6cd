"""`/admin/v1/...`: queue stats and controls, enqueue, DLQ, schedules and audit.

Every route is wrapped by `guarded`: no valid bearer token means 401 before
anything is read or changed, and a read-only principal asking for a change gets
403. Unknown queues and job types answer 404, a bad `limit` or cursor 400, a
body over the cap 413, bad bodies 422 (a payload error names the path, the
problem and the expected fields), a Redis outage 503; each answer is a JSON
object with `error`. Every mutating call is appended to the audit stream and
logged as one `admin.audit` event naming who (token role or JWT sub), what, the
queue and the counts; never the token.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import structlog
from redis import exceptions as rex
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tgworkers.engine.ops import CONNECTION_ERRORS, EngineServices
from tgworkers.engine.ops.cursor import Position, parse_cursor, parse_entry_cursor
from tgworkers.engine.ops.dlq_search import DlqFilter, search, sort_key
from tgworkers.errors import ConflictError, InputError, PayloadError
from tgworkers.http.auth import AdminAuth, Principal
from tgworkers.http.limits import (
    BadRequestError,
    BodyTooLargeError,
    capped_body,
    page_limit,
)

log = structlog.get_logger("tgworkers.admin")

Handler = Callable[[Request, Principal], Awaitable[Response]]


class NotFoundError(InputError):
    """An unknown queue or job type in the path (404)."""


class ForbiddenError(InputError):
    """A read-only principal asked for a change (403)."""


READ_ONLY_REFUSAL = "forbidden: this token may only read (ADMIN_READONLY_TOKEN or scope read)"


class DrainBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`POST .../drain` body: `{"delayed": bool}` (optional)."""

    delayed: bool = False


class EnqueueBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`POST /admin/v1/jobs/{name}` body: `{"payload": {...}, "id"?, "runAt"?, "expiresAt"?}`."""

    payload: dict[str, Any]
    id: str | None = None
    runAt: int | None = None  # noqa: N815 - the contract's field name
    expiresAt: int | None = None  # noqa: N815 - the wire name (ms), as runAt


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


_STATUS: tuple[tuple[type[InputError], int], ...] = (
    (NotFoundError, 404),
    (ForbiddenError, 403),
    (ConflictError, 409),
    (BadRequestError, 400),
    (BodyTooLargeError, 413),
    (InputError, 422),
)


def error_answer(exc: BaseException) -> Response | None:
    """The JSON answer for a user error or an outage; None for a bug (re-raised)."""
    cause = leaf(exc)
    if isinstance(cause, PayloadError):
        return JSONResponse(cause.body(), status_code=422)
    for kind, status in _STATUS:
        if isinstance(cause, kind):
            return error(status, str(cause))
    if isinstance(cause, CONNECTION_ERRORS):
        return error(503, "redis unavailable")
    if isinstance(cause, rex.OutOfMemoryError):
        return error(503, "redis refused the change: maxmemory reached (OutOfMemoryError); "
                          "dropping dead letters or draining frees memory")  # fmt: skip
    if isinstance(cause, rex.ReadOnlyError):
        return error(503, "redis refused the change: a read-only replica (ReadOnlyError)")
    return None


def guarded(handler: Handler, *, change: bool = False) -> Callable[[Request], Awaitable[Response]]:
    """Authenticate (and for a change, authorize) first; map errors to JSON answers."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        auth: AdminAuth = request.app.state.auth
        principal = auth.authenticate(request.headers.get("authorization"))
        if principal is None:
            return JSONResponse(
                {"error": "unauthorized"}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
        if change and not principal.may_change:
            return error(403, READ_ONLY_REFUSAL)
        try:
            return await handler(request, principal)
        except BaseException as exc:
            answer = error_answer(exc)
            if answer is None:
                raise
            return answer

    return endpoint


def services(request: Request) -> EngineServices:
    svc: EngineServices = request.app.state.services
    return svc


def known_queue(request: Request, name: str | None = None) -> str:
    """The queue named in the path (or `name`); `NotFoundError` (404) when unknown."""
    queue: str = name if name is not None else request.path_params["queue"]
    try:
        services(request).registry.queue(queue)
    except InputError as exc:
        raise NotFoundError(str(exc)) from None
    return queue


async def body_of(request: Request, kind: type[Any]) -> Any:
    raw = await capped_body(request)
    try:
        return msgspec.json.decode(raw or b"{}", type=kind)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise InputError(f"bad request body: {exc}") from None


async def audit(
    request: Request, principal: Principal, action: str, target: str, **details: Any
) -> None:
    """Append the change to the audit stream and log it (never the token)."""
    via = "console" if principal.kind == "session" else "api"
    await services(request).audit.record(
        via=via, who=principal.who, role=principal.role, action=action, target=target,
        **details,
    )  # fmt: skip
    log.info("admin.audit", who=principal.kind, subject=principal.subject, action=action,
             target=target, via=via, **details)  # fmt: skip


def cursor_param(request: Request, position: Position = "entry") -> str | None:
    """The `cursor` of a partitioned listing; 400 when it is not a previous page's `next`."""
    cursor = request.query_params.get("cursor") or None
    try:
        parse_cursor(cursor, position=position)
    except InputError as exc:
        raise BadRequestError(str(exc)) from None
    return cursor


def audit_cursor(request: Request) -> str | None:
    """The audit log's `cursor` (an entry id); 400 when it is not a previous page's `next`."""
    try:
        return parse_entry_cursor(request.query_params.get("cursor"))
    except InputError as exc:
        raise BadRequestError(str(exc)) from None


def json_of(value: Any, status: int = 200) -> Response:
    return Response(msgspec.json.encode(value), status_code=status, media_type="application/json")


async def queues(request: Request, _: Principal) -> Response:
    return json_of(await services(request).stats.snapshot())


async def set_paused(request: Request, who: Principal, *, paused: bool) -> Response:
    queue = known_queue(request)
    state = await services(request).control.operator_pause(queue, paused=paused)
    await audit(request, who, "pause" if paused else "resume", queue, queue=queue)
    return json_of(state)


async def drain(request: Request, who: Principal) -> Response:
    queue = known_queue(request)
    body: DrainBody = await body_of(request, DrainBody)
    result = await services(request).control.drain(queue, delayed=body.delayed)
    await audit(request, who, "drain", queue, queue=queue, removed_ready=result.removed_ready,
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
        name,
        body.payload,
        id=body.id,
        run_at_ms=body.runAt,
        origin=f"admin:{who.subject}",
        expires_at_ms=body.expiresAt,
    )
    await audit(request, who, "enqueue", name, job=name, queue=result.queue, job_id=result.id,
                created=result.created)  # fmt: skip
    return json_of(result, 201 if result.created else 200)


async def dlq_list(request: Request, _: Principal) -> Response:
    queue = known_queue(request)
    limit, cursor = page_limit(request), cursor_param(request)
    flt, sort = dlq_filter(request)  # issue 26: idPrefix, name, error, sort
    if flt.active or sort:
        dlq = services(request).dlq
        return json_of(await search(dlq, queue, flt, limit=limit, cursor=cursor, sort=sort))
    return json_of(await services(request).dlq.list_jobs(queue, limit=limit, cursor=cursor))


def dlq_filter(request: Request) -> tuple[DlqFilter, str | None]:
    """The DLQ filter and sort of a request's query (`idPrefix`, `name`, `error`, `sort`)."""
    q = request.query_params
    flt = DlqFilter(id_prefix=q.get("idPrefix") or None, name=q.get("name") or None,
                    error=q.get("error") or None)  # fmt: skip
    sort = q.get("sort") or None
    try:
        sort_key(sort)
    except InputError as exc:
        raise BadRequestError(str(exc)) from None
    return flt, sort


async def dlq_requeue(request: Request, who: Principal) -> Response:
    queue = known_queue(request)
    body: SelectionBody = await body_of(request, SelectionBody)
    result = await services(request).dlq.requeue(
        queue, body.targets(), reset_attempts=body.resetAttempts, by=f"admin:{who.subject}"
    )
    await audit(request, who, "dlq.requeue", queue, queue=queue, requeued=result["requeued"],
                skipped=len(result["skipped"]), all=body.all)  # fmt: skip
    return json_of(result)


async def dlq_drop(request: Request, who: Principal) -> Response:
    queue = known_queue(request)
    body: SelectionBody = await body_of(request, SelectionBody)
    result = await services(request).dlq.drop(queue, body.targets())
    await audit(request, who, "dlq.drop", queue, queue=queue, dropped=result["dropped"],
                all=body.all)  # fmt: skip
    return json_of(result)


async def dlq_export(request: Request, _: Principal) -> Response:
    queue = known_queue(request)
    limit = page_limit(request) if "limit" in request.query_params else None
    lines = services(request).dlq.export(queue, cursor=cursor_param(request), limit=limit)
    return StreamingResponse(lines, media_type="application/x-ndjson")


async def schedules(request: Request, _: Principal) -> Response:
    return json_of(await services(request).schedules.read())


async def audit_log(request: Request, _: Principal) -> Response:
    limit, before = page_limit(request), audit_cursor(request)
    return json_of(await services(request).audit.page(limit=limit, before=before))


def changes(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    return guarded(handler, change=True)


ROUTES = [
    Route("/admin/v1/queues", guarded(queues), methods=["GET"]),
    Route("/admin/v1/queues/{queue}/pause",
          changes(functools.partial(set_paused, paused=True)), methods=["POST"]),
    Route("/admin/v1/queues/{queue}/resume",
          changes(functools.partial(set_paused, paused=False)), methods=["POST"]),
    Route("/admin/v1/queues/{queue}/drain", changes(drain), methods=["POST"]),
    Route("/admin/v1/jobs/{name}", changes(enqueue), methods=["POST"]),
    Route("/admin/v1/dlq/{queue}", guarded(dlq_list), methods=["GET"]),
    Route("/admin/v1/dlq/{queue}/requeue", changes(dlq_requeue), methods=["POST"]),
    Route("/admin/v1/dlq/{queue}/drop", changes(dlq_drop), methods=["POST"]),
    Route("/admin/v1/dlq/{queue}/export", guarded(dlq_export), methods=["GET"]),
    Route("/admin/v1/schedules", guarded(schedules), methods=["GET"]),
    Route("/admin/v1/audit", guarded(audit_log), methods=["GET"]),
]  # fmt: skip
