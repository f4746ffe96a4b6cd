"""What every console page shares: templates, the session guard, CSRF, forms, headers.

`page(handler)` resolves the caller (a session cookie, or a bearer token as the
API takes) before the handler runs; without one a GET goes to the login page and
anything else gets 401. `page(handler, change=True)` also requires role `admin`
(403 otherwise; `any_role=True` skips that check for sign-out, which every session
may do) and, for a session, the session's CSRF token in the form field
`csrf` or the `X-CSRF-Token` header (htmx sends it from `<body hx-headers>`):
SameSite=Strict already keeps other sites' forms from carrying the cookie; the
token is the second lock. A bearer token is not sent by browsers on their own,
so a bearer call needs no CSRF token.
"""

from __future__ import annotations

import functools
import hmac
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import parse_qs, quote

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tgworkers.http.admin import error_answer
from tgworkers.http.auth import AdminAuth, Principal
from tgworkers.http.console.session import COOKIE, Session, SessionStore
from tgworkers.http.limits import capped_body

FORM_MAX_BYTES: Final = 256 * 1024
SECURITY_HEADERS: Final = (
    (b"content-security-policy",
     b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
     b"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
)  # fmt: skip

templates = jinja2.Environment(
    loader=jinja2.PackageLoader("tgworkers.http.console", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


def when(ms: int | None) -> str:
    if not ms:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def age(ms: int | None) -> str:
    if ms is None:
        return "-"
    s = ms / 1000
    if s < 60:  # noqa: PLR2004
        return f"{s:.1f} s"
    if s < 3600:  # noqa: PLR2004
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def pretty(value: Any) -> str:
    """JSON as an operator reads and copies it: indented, `<`, `&`, `'` and non-ASCII as is.

    Jinja's `tojson` writes `<` as `\u003c` (safe inside `<script>`, unreadable in a
    page); this text goes into an element instead, where autoescape makes it safe.
    """
    return json.dumps(value, indent=2, ensure_ascii=False)


templates.filters["when"] = when
templates.filters["age"] = age
templates.filters["pretty"] = pretty
templates.filters["pretty_line"] = lambda value: json.dumps(value, ensure_ascii=False)


class Caller:
    """The principal of a console request and its session (None for a bearer caller)."""

    def __init__(self, principal: Principal, session: Session | None) -> None:
        self.principal = principal
        self.session = session

    @property
    def csrf(self) -> str:
        return self.session.csrf if self.session else ""


Handler = Callable[[Request, Caller], Awaitable[Response]]


def store(request: Request) -> SessionStore:
    sessions: SessionStore = request.app.state.sessions
    return sessions


def render(request: Request, caller: Caller | None, name: str, status: int = 200,
           **context: Any) -> HTMLResponse:  # fmt: skip
    """A template with what every page needs (who, role, CSRF token, nav)."""
    said = said_text(request.query_params.get("said", "")) if caller else ""
    body = templates.get_template(name).render(
        caller=caller, csrf=caller.csrf if caller else "", path=request.url.path,
        can_change=bool(caller and caller.principal.may_change), said=said, **context,
    )  # fmt: skip
    return HTMLResponse(body, status_code=status, headers={"cache-control": "no-store"})


async def resolve(request: Request) -> Caller | None:
    session = await store(request).read(request.cookies.get(COOKIE))
    if session is not None:
        return Caller(session.principal(), session)
    auth: AdminAuth = request.app.state.auth
    principal = auth.authenticate(request.headers.get("authorization"))
    return Caller(principal, None) if principal is not None else None


async def form_of(request: Request) -> dict[str, list[str]]:
    """An urlencoded form, capped; values by name (multi-valued for checkboxes)."""
    raw = await capped_body(request, FORM_MAX_BYTES)
    return parse_qs(raw.decode(errors="replace"), keep_blank_values=True)


def csrf_ok(caller: Caller, form: dict[str, list[str]], request: Request) -> bool:
    if caller.session is None:
        return True
    sent = request.headers.get("x-csrf-token") or (form.get("csrf") or [""])[0]
    return bool(sent) and hmac.compare_digest(sent.encode(), caller.session.csrf.encode())


def refused(request: Request, caller: Caller | None, status: int, message: str) -> Response:
    return render(request, caller, "error.html", status=status, message=message)


def not_signed_in(request: Request) -> Response:
    """To the login page: htmx polls by header, page loads by redirect; changes get 401."""
    if request.headers.get("hx-request"):  # a poll after the session ended
        return Response(status_code=204, headers={"HX-Redirect": "/ui/login"})
    if request.method == "GET":
        target = quote(request.url.path, safe="/")
        return RedirectResponse(f"/ui/login?next={target}", status_code=303)
    return refused(request, None, 401, "not signed in")


def page(
    handler: Handler, *, change: bool = False, any_role: bool = False
) -> Callable[[Request], Awaitable[Response]]:
    """Guard a console route (see the module docstring); user errors become an error page.

    `any_role`: a change every signed-in caller may make (signing out), CSRF still checked.
    """

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        caller = await resolve(request)
        if caller is None:
            return not_signed_in(request)
        if change:
            form = await form_of(request)
            if not (any_role or caller.principal.may_change):
                return refused(request, caller, 403, "this session may only view (read-only)")
            if not csrf_ok(caller, form, request):
                return refused(request, caller, 403, "missing or wrong CSRF token; reload the page")
            request.state.form = form
        try:
            return await handler(request, caller)
        except BaseException as exc:
            answer = error_answer(exc)
            if answer is None:
                raise
            text = str(json.loads(bytes(answer.body)).get("error", "error"))
            return refused(request, caller, answer.status_code, text)

    return endpoint


def form(request: Request) -> dict[str, list[str]]:
    values: dict[str, list[str]] = request.state.form
    return values


def said_text(code: str) -> str:
    """The note after an action, from its code (`requeued.N.SKIPPED.RESET`, `dropped.N`).

    Only these sentences with numbers in them: a crafted link cannot put words of its
    own on a console page.
    """
    kind, *numbers = code.split(".")
    if not all(n.isdigit() for n in numbers):
        return ""
    counts = [int(n) for n in numbers]
    if kind == "dropped" and len(counts) == 1:
        return f"Dropped {counts[0]} dead letter(s) for good."
    if kind != "requeued" or len(counts) != 3:  # noqa: PLR2004 - n, skipped, reset
        return ""
    n, skipped, reset = counts
    what = f"Requeued {n} job(s)" + (f"; {skipped} no longer dead, skipped" if skipped else "")
    if reset:
        return f"{what}. Attempts reset: each starts again at attempt 1 with its full retries."
    return (f"{what}. Attempts kept: each runs once more as its next attempt, and one whose "
            "attempts were used up goes back to the DLQ if it fails again (tick 'reset "
            "attempts' for its full retries).")  # fmt: skip


def back(request: Request, default: str, said: str | None = None) -> RedirectResponse:
    """After an action: 303 to the page it came from (same-origin path only).

    `said` is what the action did (`said_text`), shown on the page it goes back to.
    """
    target = (form(request).get("next") or [default])[0]
    if not target.startswith("/ui/") or "\\" in target or "//" in target:
        target = default  # never leave the console (a browser reads `/\\host` as `//host`)
    if said:
        target += ("&" if "?" in target else "?") + "said=" + quote(said, safe="")
    return RedirectResponse(target, status_code=303)


class SecurityHeaders:
    """ASGI middleware: CSP without inline script, no framing, no referrer, on every answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)
