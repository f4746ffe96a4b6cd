"""Sign-in and out, and the console's changes: pause, resume, drain, DLQ requeue and drop.

Every change goes through `web.page(..., change=True)` (role `admin`, CSRF
token), calls the same engine service as the admin API, is appended to the audit
stream with `via=console`, and answers 303 back to the page it came from. The
browser asks for confirmation first (`hx-confirm` on the form).
"""

from __future__ import annotations

from typing import Final

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from tgworkers.http.admin import audit, known_queue, services
from tgworkers.http.auth import AdminAuth, Principal
from tgworkers.http.console.session import COOKIE
from tgworkers.http.console.web import Caller, back, form, form_of, render, resolve, store
from tgworkers.http.limits import MAX_LIMIT, BadRequestError

LOGIN_FAILED: Final = "That token is not valid here."


def _session_cookie(request: Request, response: Response, value: str, max_age: int) -> None:
    secure = request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"
    response.set_cookie(COOKIE, value, max_age=max_age, path="/", httponly=True,
                        samesite="strict", secure=secure)  # fmt: skip


def _next_path(raw: str | None) -> str:
    if raw and raw.startswith("/ui/") and "\\" not in raw and "//" not in raw:
        return raw
    return "/ui/"


async def login_form(request: Request) -> Response:
    if await resolve(request) is not None:
        return RedirectResponse("/ui/", status_code=303)
    return render(request, None, "login.html", next=_next_path(request.query_params.get("next")),
                  error=None)  # fmt: skip


def _address(request: Request) -> str:
    """The peer address failed sign-ins are counted by (the ingress's, behind one)."""
    return request.client.host if request.client else "unknown"


async def _throttled(request: Request, target: str) -> Response | None:
    """429 while this address has failed too often (see session.py); None otherwise."""
    wait_s = await store(request).login_wait_s(_address(request))
    if not wait_s:
        return None
    response = render(request, None, "login.html", status=429, next=target,
                      error=f"Too many failed sign-ins; try again in {wait_s} s.")  # fmt: skip
    response.headers["retry-after"] = str(wait_s)
    return response


async def _refused(request: Request, target: str, error: str) -> Response:
    await store(request).login_failed(_address(request))
    return render(request, None, "login.html", status=401, next=target, error=error)


async def _signed_in(request: Request, principal: Principal, target: str) -> Response:
    sessions = store(request)
    await sessions.login_succeeded(_address(request))
    session = await sessions.open(principal)
    response = RedirectResponse(target, status_code=303)
    _session_cookie(request, response, sessions.cookie_value(session), sessions.ttl_s)
    return response


async def login(request: Request) -> Response:
    values = await form_of(request)
    token = (values.get("token") or [""])[0].strip()
    target = _next_path((values.get("next") or [""])[0])
    if (throttled := await _throttled(request, target)) is not None:
        return throttled
    auth: AdminAuth = request.app.state.auth
    principal = auth.check_token(token)
    if principal is None or principal.kind == "jwt":  # JWTs are for services, minutes long
        return await _refused(request, target, LOGIN_FAILED)
    return await _signed_in(request, principal, target)


async def login_link(request: Request) -> Response:
    if (throttled := await _throttled(request, "/ui/")) is not None:
        return throttled
    principal = await store(request).redeem_link(request.query_params.get("t", ""))
    if principal is None:
        return await _refused(request, "/ui/", "That login link was already used or has expired.")
    return await _signed_in(request, principal, "/ui/")


async def logout(request: Request, caller: Caller) -> Response:
    if caller.session is not None:
        await store(request).end(caller.session)
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


async def set_paused(request: Request, caller: Caller) -> Response:
    queue = known_queue(request)
    paused = request.url.path.endswith("/pause")
    await services(request).control.operator_pause(queue, paused=paused)
    await audit(request, caller.principal, "pause" if paused else "resume", queue, queue=queue)
    return back(request, f"/ui/queues/{queue}")


async def drain(request: Request, caller: Caller) -> Response:
    queue = known_queue(request)
    delayed = (form(request).get("delayed") or [""])[0] == "1"
    result = await services(request).control.drain(queue, delayed=delayed)
    await audit(request, caller.principal, "drain", queue, queue=queue,
                removed_ready=result.removed_ready,
                removed_delayed=result.removed_delayed)  # fmt: skip
    return back(request, f"/ui/queues/{queue}")


def _selection(request: Request) -> list[str] | None:
    values = form(request)
    if (values.get("all") or [""])[0] == "1":
        return None
    ids = [i for i in values.get("ids", []) if i]
    if not ids:
        raise BadRequestError("select at least one job (or use the 'all' button)")
    if len(ids) > MAX_LIMIT:
        raise BadRequestError(f"at most {MAX_LIMIT} jobs at once; use 'all' for more")
    return ids


async def dlq_action(request: Request, caller: Caller) -> Response:
    queue = known_queue(request)
    ids = _selection(request)
    dlq = services(request).dlq
    op = (form(request).get("op") or [request.url.path.rsplit("/", 1)[-1]])[0]
    if op not in ("requeue", "drop"):
        raise BadRequestError(f"op: expected requeue or drop, got {op!r}")
    if op == "requeue":
        reset = (form(request).get("reset") or [""])[0] == "1"
        result = await dlq.requeue(
            queue, ids, reset_attempts=reset, by=f"console:{caller.principal.who}"
        )
        await audit(request, caller.principal, "dlq.requeue", queue, queue=queue,
                    requeued=result["requeued"], skipped=len(result["skipped"]),
                    all=ids is None, reset_attempts=reset)  # fmt: skip
        said = f"requeued.{result['requeued']}.{len(result['skipped'])}.{int(reset)}"
    else:
        dropped = await dlq.drop(queue, ids)
        await audit(request, caller.principal, "dlq.drop", queue, queue=queue,
                    dropped=dropped["dropped"], all=ids is None)  # fmt: skip
        said = f"dropped.{dropped['dropped']}"
    return back(request, f"/ui/queues/{queue}/dlq", said)
