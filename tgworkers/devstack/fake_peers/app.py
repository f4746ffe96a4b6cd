"""The fake peers as one Starlette app: `/{peer}/internal/v1/...` for every peer.

Each request goes through the same steps, like a real peer behind a gateway:
record it → apply a scripted fault → verify the service JWT (401 otherwise) →
replay the first answer to a known `Idempotency-Key` → run the handler.
An answer is kept for replay unless it is retryable (not_due, 408/425/429, 5xx):
a retryable answer means the peer did nothing, so the retry must really run.
"""

from __future__ import annotations

import asyncio
import json
import threading
import warnings
from collections.abc import Mapping
from typing import Any, Final

from joserfc import jwt
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import OKPKey
from joserfc.jwt import JWTClaimsRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Receive, Scope, Send

from tgworkers.devstack.fake_peers import handlers as h
from tgworkers.devstack.fake_peers.state import Answer, FakeState, Fault, RecordedRequest

PEERS: Final = ("playhub", "payhub", "campaigns", "escrow", "discovery", "price")
ROUTES: Final[tuple[tuple[str, str, str, h.Handler], ...]] = (
    ("playhub", "POST", "/internal/v1/cfb/settle", h.settle_cfb_bet),
    ("playhub", "GET", "/internal/v1/cfb/bets", h.open_bets),
    ("playhub", "POST", "/internal/v1/cfb/prices", h.store_price_bars),
    ("playhub", "GET", "/internal/v1/games/{match_id}", h.get_match),
    ("playhub", "POST", "/internal/v1/games/{match_id}/settled", h.mark_match_settled),
    ("payhub", "GET", "/internal/v1/holds", h.orphan_holds),
    ("payhub", "POST", "/internal/v1/holds/{hold_id}/release", h.release_hold),
    ("payhub", "POST", "/internal/v1/settlements", h.create_settlement),
    ("payhub", "POST", "/internal/v1/rewards", h.issue_reward),
    ("payhub", "GET", "/internal/v1/ledger/invariants", h.ledger_invariants),
    ("campaigns", "GET", "/internal/v1/proofs/{proof_id}", h.get_proof),
    ("campaigns", "POST", "/internal/v1/proofs/{proof_id}/verify", h.verify_proof),
    ("campaigns", "POST", "/internal/v1/proofs/{proof_id}/verdict", h.record_verdict),
    ("campaigns", "GET", "/internal/v1/claims/{claim_id}", h.get_claim),
    ("campaigns", "POST", "/internal/v1/claims/{claim_id}/receipt", h.record_claim_receipt),
    ("escrow", "GET", "/internal/v1/escrows/{escrow_id}", h.get_escrow),
    ("escrow", "POST", "/internal/v1/escrows/{escrow_id}/transition", h.transition_escrow),
    ("discovery", "GET", "/internal/v1/channels/{channel_id}/members/{user_id}", h.check_member),
    ("price", "GET", "/internal/v1/prices", h.get_prices),
)
"""(peer, method, path, handler); a route's name (for faults) is its handler's name."""

_RETRYABLE: Final = frozenset({408, 425, 429})
_NOT_REPLAYED_CODES: Final = frozenset({"not_due"})
_INJECTED: Final = {"code": "injected_fault", "message": "a fault scripted by the test"}


class SimulatedResetError(Exception):
    """Raised after a partial answer so the server drops the connection (a fault)."""


class TokenVerifier:
    """Checks a service JWT with the public key: signature, kid, iss, aud, exp, jti."""

    def __init__(self, public_jwk: Mapping[str, Any], *, issuer: str) -> None:
        public = {k: v for k, v in public_jwk.items() if k != "d"}  # never hold the private half
        self._key = OKPKey.import_key(public)
        self.kid = str(public.get("kid") or self._key.thumbprint())
        self.issuer = issuer

    def problem(self, authorization: str | None, audience: str) -> str | None:
        """Why the token is refused, or None when it is good."""
        if not authorization or not authorization.startswith("Bearer "):
            return "missing bearer token"
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "EdDSA is deprecated", SecurityWarning)
                token = jwt.decode(authorization[7:], self._key, algorithms=["EdDSA", "Ed25519"])
            if token.header.get("kid") != self.kid:
                return "unknown kid"
            JWTClaimsRegistry(
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": audience},
                sub={"essential": True},
                exp={"essential": True},
                iat={"essential": True},
                jti={"essential": True},
            ).validate(token.claims)
        except (JoseError, ValueError) as exc:
            return type(exc).__name__
        return None


class _Json(Response):
    media_type = "application/json"


class _ResetResponse(Response):
    """Promises a body, sends a part of it and breaks off."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", b"1000")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b'{"partial":', "more_body": True})
        raise SimulatedResetError


def _response(answer: Answer) -> Response:
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else {}
    return _Json(json.dumps(answer.body), status_code=answer.status, headers=headers)


def _keep_for_replay(answer: Answer) -> bool:
    code = answer.body.get("code")
    pending = answer.body.get("verdict") == "pending"  # undecided: the next /verify must check
    retryable = answer.status >= 500 or answer.status in _RETRYABLE  # noqa: PLR2004
    return not (retryable or code in _NOT_REPLAYED_CODES or pending)


class FakePeersApp:
    """Builds the endpoint of every route around one `FakeState` and verifier."""

    def __init__(
        self, state: FakeState, verifier: TokenVerifier | None, stopping: threading.Event
    ) -> None:
        self.state = state
        self.verifier = verifier
        self.stopping = stopping

    def starlette(self) -> Starlette:
        mounts: list[BaseRoute] = []
        for peer in PEERS:
            routes = [
                Route(path, self._endpoint(peer, handler), methods=[method], name=handler.__name__)
                for p, method, path, handler in ROUTES
                if p == peer
            ]
            mounts.append(Mount(f"/{peer}", routes=routes))
        return Starlette(routes=mounts)

    def _endpoint(self, peer: str, handler: h.Handler) -> Any:
        async def endpoint(request: Request) -> Response:
            return await self._handle(peer, handler, request)

        return endpoint

    async def _handle(self, peer: str, handler: h.Handler, request: Request) -> Response:
        raw = await request.body()
        body = _parse(raw)
        headers = {k.lower(): v for k, v in request.headers.items()}
        route = handler.__name__
        record = RecordedRequest(
            peer, route, request.method, request.url.path, dict(request.query_params), headers, body
        )
        with self.state.lock:
            self.state.recorded.append(record)
        fault = self.state.take_fault(peer, route)
        if fault is not None:
            faulted = await self._fault(fault)
            if faulted is not None:
                return faulted
        problem = (
            self.verifier.problem(headers.get("authorization"), peer) if self.verifier else None
        )
        if problem is not None:
            status, payload = h.error(401, "unauthorized", problem)
            return _response(Answer(status, payload))
        return _response(self._answer(peer, handler, request, headers, body))

    def _answer(
        self, peer: str, handler: h.Handler, request: Request, headers: dict[str, str], body: Any
    ) -> Answer:
        key = headers.get("idempotency-key")
        with self.state.lock:
            if request.method == "POST":
                if not key:
                    return Answer(*h.error(400, "idempotency_key_required"))
                seen = self.state.answers.get((peer, key))
                if seen is not None:
                    return Answer(seen.status, seen.body, replayed=True)
            if body is not None and not isinstance(body, dict):
                return Answer(*h.error(400, "invalid_body", "expected a JSON object"))
            call = h.Call(dict(request.path_params), dict(request.query_params), body or {})
            answer = Answer(*handler(self.state, call))
            if key and request.method == "POST" and _keep_for_replay(answer):
                self.state.answers[(peer, key)] = answer
            return answer

    async def _fault(self, fault: Fault) -> Response | None:
        if fault.delay_s:
            await asyncio.sleep(fault.delay_s)
        if fault.hang_s:
            await asyncio.to_thread(self.stopping.wait, fault.hang_s)  # ends early on stop()
            return _Json(b'{"code": "hung"}', status_code=504)
        if fault.reset:
            return _ResetResponse()
        if fault.status is None:
            return None
        content = (
            fault.body if isinstance(fault.body, bytes) else json.dumps(fault.body or _INJECTED)
        )
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        return _Json(content, status_code=fault.status, headers=headers)


def _parse(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", errors="replace")
