"""`PeerClient`: the one place where tgworkers talks HTTP to a peer service.

Duties, in order, for every call:
1. build headers: `Idempotency-Key` (mutations), `X-Request-Id`, W3C trace context,
   `User-Agent`; `Authorization` comes from the `httpx.Auth` (the service JWT);
2. send over one pooled keep-alive HTTP/1.1 connection pool per peer, under a
   connect timeout and a whole-request deadline;
3. read the body with a size cap;
4. classify the answer (`answers.classify`) and return it, or raise the matching
   `PeerError`. httpx exceptions are translated here and nowhere else.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import ClassVar, Final, TypeVar

import httpx
import msgspec
import structlog
from opentelemetry import propagate

import tgworkers
from tgworkers.engine import request_id_var  # `job_id:attempt` where the harness sets it
from tgworkers.engine.telemetry import recorder as telemetry
from tgworkers.engine.telemetry.context import current_request_id
from tgworkers.peers.answers import AnswerKind, PeerAnswer, classify, cut_body, to_error
from tgworkers.peers.errors import (
    PeerConnectionError,
    PeerPermanentError,
    PeerTimeoutError,
    PeerUnexpectedError,
)
from tgworkers.peers.models import Page

T = TypeVar("T")
P = TypeVar("P", bound=Page)

log = structlog.get_logger(__name__)

MAX_BODY_BYTES: Final = 1024 * 1024
"""Answers larger than 1 MiB are refused (`PeerUnexpectedError`): no peer answer is that big."""
USER_AGENT: Final = f"tgworkers/{tgworkers.__version__}"

AuthRejectedHook = Callable[[str, int], None]
auth_rejected_hooks: list[AuthRejectedHook] = []
"""Called as `hook(peer, status)` on every 401/403; observability wires its counter here."""

Params = Mapping[str, str | int]
RateGate = Callable[[str], Awaitable[None]]
"""Awaited before each call with the peer's name: the shared rate limit (engine/ops/rates.py)."""


def _is_header_value(value: str) -> bool:
    """Whether `value` can travel as an HTTP header value as it is: printable ASCII, no CR/LF."""
    return value.isascii() and value.isprintable()


class PeerTimeouts(msgspec.Struct, frozen=True, kw_only=True):
    """Connect timeout and whole-request deadline of one peer, in seconds."""

    connect_s: float = 2.0
    total_s: float = 10.0


class PeerClient:
    """Base of the typed clients: one `httpx.AsyncClient` per peer.

    Subclasses set `audience` and add one typed method per endpoint; they call
    `_get`/`_post` and decode the returned bytes with their module's Decoders.
    """

    audience: ClassVar[str]

    def __init__(
        self,
        base_url: str,
        *,
        auth: httpx.Auth,
        timeouts: PeerTimeouts | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        timeouts = timeouts or PeerTimeouts()
        self._total_s = timeouts.total_s
        self._max_body_bytes = max_body_bytes
        self._http = httpx.AsyncClient(
            base_url=base_url,
            auth=auth,
            timeout=httpx.Timeout(timeouts.total_s, connect=timeouts.connect_s),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            http1=True,
            http2=False,
            transport=transport,  # None: real sockets; tests may route in-process
        )
        self.auth_rejected = 0
        self.rate_gate: RateGate | None = None
        """Set by the process (`Peers.use_rate_gate`); may raise a not-due signal."""

    @property
    def base_url(self) -> str:
        return str(self._http.base_url)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _get(self, path: str, *, params: Params | None = None) -> bytes:
        _, body = await self._call("GET", path, params=params)
        return body

    async def _pages(
        self, path: str, params: Params, decoder: msgspec.json.Decoder[P], operation: str
    ) -> AsyncIterator[P]:
        """Every page of a cursor-paged list, following `nextCursor` until it is null."""
        cursor: str | None = None
        while True:
            query = dict(params) if cursor is None else {**params, "cursor": cursor}
            page = self._decode(decoder, await self._get(path, params=query), operation)
            yield page
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def _post(
        self,
        path: str,
        body: object,
        *,
        key: str,
        success_codes: frozenset[str] = frozenset(),
    ) -> tuple[PeerAnswer, bytes]:
        if not key:
            raise ValueError("an Idempotency-Key is required on every mutating call")
        if not _is_header_value(key):
            # a key built from a producer's id (a betId with an accent, a newline): no attempt
            # could ever send it, so it is dead-lettered at once instead of retried until the
            # attempts run out (httpx raises UnicodeEncodeError, LocalProtocolError for these)
            raise PeerPermanentError(
                f"POST {path}: the Idempotency-Key {key!r} is not a header value "
                "(printable ASCII only); the id it is built from must be ASCII",
                peer=self.audience,
            )
        content = msgspec.json.encode(body) if body is not None else b""
        return await self._call("POST", path, content=content, key=key, success_codes=success_codes)

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        content: bytes | None = None,
        key: str | None = None,
        success_codes: frozenset[str] = frozenset(),
    ) -> tuple[PeerAnswer, bytes]:
        operation = f"{method} {path}"
        if self.rate_gate is not None:
            await self.rate_gate(self.audience)  # a permit of RATE_<PEER>_PER_S, or NotDue
        started = time.perf_counter()
        with telemetry.active().peer_call(self.audience, method, path) as call:
            headers = self._headers(key, has_body=content is not None)  # the CLIENT span's
            status, response_headers, raw = await self._send(
                method, path, operation, headers=headers, params=params, content=content
            )
            answer = classify(status, response_headers, raw, success_codes=success_codes)
            call.answered(status, answer.kind.value)
        log.debug(
            "peer.called",
            peer=self.audience,
            method=method,
            path=path,
            status=status,
            kind=answer.kind.value,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
        )
        if answer.ok:
            return answer, raw
        if answer.kind is AnswerKind.AUTH:
            self._auth_rejected(status)
        raise to_error(answer, peer=self.audience, operation=operation)

    def _headers(self, key: str | None, *, has_body: bool) -> dict[str, str]:
        rid = request_id_var.get() or current_request_id()  # the harness's, else the run's
        headers = {"X-Request-Id": rid or uuid.uuid4().hex}
        if key is not None:
            headers["Idempotency-Key"] = key
        if has_body:
            headers["Content-Type"] = "application/json"
        propagate.inject(headers)  # traceparent / tracestate of the current span
        if "traceparent" not in headers:  # a run that records no span: its carried context
            headers.update(telemetry.carried_trace_headers())
        return headers

    async def _send(
        self,
        method: str,
        path: str,
        operation: str,
        *,
        headers: dict[str, str],
        params: Params | None,
        content: bytes | None,
    ) -> tuple[int, httpx.Headers, bytes]:
        try:
            async with asyncio.timeout(self._total_s):
                request = self._http.build_request(
                    method, path, params=params, content=content, headers=headers
                )
                response = await self._http.send(request, stream=True)
                try:
                    raw = await self._read_capped(response, operation)
                finally:
                    await response.aclose()
        except (TimeoutError, httpx.TimeoutException):
            raise PeerTimeoutError(
                f"{self.audience} {operation}: no answer within the timeout", peer=self.audience
            ) from None
        except httpx.TransportError as exc:
            raise PeerConnectionError(
                f"{self.audience} {operation}: {type(exc).__name__}", peer=self.audience
            ) from None
        return response.status_code, response.headers, raw

    async def _read_capped(self, response: httpx.Response, operation: str) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self._max_body_bytes:
                raise PeerUnexpectedError(
                    f"{self.audience} {operation}: answer over {self._max_body_bytes} bytes",
                    peer=self.audience,
                    status=response.status_code,
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def _auth_rejected(self, status: int) -> None:
        self.auth_rejected += 1
        log.error("peer.auth_rejected", peer=self.audience, status=status)
        telemetry.active().auth_rejected(self.audience, status)
        for hook in auth_rejected_hooks:
            hook(self.audience, status)

    def _decode(self, decoder: msgspec.json.Decoder[T], raw: bytes, operation: str) -> T:
        """Decode a 2xx body; one that breaks the contract is retried, not trusted."""
        try:
            return decoder.decode(raw)
        except msgspec.DecodeError as exc:
            raise PeerUnexpectedError(
                f"{self.audience} {operation}: answer does not match the contract ({exc})",
                peer=self.audience,
                body=cut_body(raw),
            ) from None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"
