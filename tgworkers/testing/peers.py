"""`FakePeerService`: the fake peers (tgworkers.devstack) with the key jobs sign with.

The same fakes `dev` and the project's tests use: real contract behaviour
(idempotent replay, JWT checks, entities you seed), fault injection (`fail`,
`slow`, `hang`, `reset_connection`, per-route `answer`) and a request log. They
serve either in-process (`transport()`, for `perform`: no socket at all) or on a
loopback port (`start()`, for a worker, which reaches them by URL).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
from joserfc.jwk import OKPKey

from tgworkers.config import Settings, load_settings
from tgworkers.devstack.fake_peers import PEERS, FakePeers, FakeState, Fault, RecordedRequest
from tgworkers.jobs.settings import peers_config
from tgworkers.peers import Peers, ServiceKey, build_peers

ISSUER = "tgworkers-test"
IN_PROCESS_BASE = "http://fake-peers.test"
"""The base URL of in-process fakes: never resolved, the transport answers."""


class FakePeerService:
    """Fake peers that verify tokens signed by this service's own fresh key."""

    def __init__(self, *, issuer: str = ISSUER, clock: Callable[[], float] = time.time) -> None:
        self.jwk_text = json.dumps(OKPKey.generate_key("Ed25519").as_dict(private=True))
        self.issuer = issuer
        self.key = ServiceKey.from_jwk_text(self.jwk_text)
        self.fake = FakePeers(self.key.public_jwk(), issuer=issuer, clock=clock)
        self._started = False

    @property
    def state(self) -> FakeState:
        """The fakes' world: seed it (`add_bet`, `add_escrow`, ...) and read it back."""
        return self.fake.state

    def start(self) -> FakePeerService:
        if not self._started:
            self.fake.start()
            self._started = True
        return self

    def stop(self) -> None:
        if self._started:
            self.fake.stop()
            self._started = False

    def env(self, *, in_process: bool = False) -> dict[str, str]:
        """`SVC_*_URL`, the service key and issuer: what a worker reads to reach the fakes."""
        if not (in_process or self._started):
            raise RuntimeError("fake peers not started: call start() (or use in_process=True)")
        urls = {
            f"SVC_{p.upper()}_URL": f"{IN_PROCESS_BASE}/{p}"
            if in_process
            else self.fake.base_url(p)
            for p in PEERS
        }
        return {**urls, "SERVICE_JWT_PRIVATE_JWK": self.jwk_text, "SERVICE_JWT_ISSUER": self.issuer}

    def transport(self) -> httpx.AsyncBaseTransport:
        """An httpx transport answering from the fakes in this process."""
        return httpx.ASGITransport(app=self.fake.asgi_app)

    def peers(
        self,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        settings: Settings | None = None,
    ) -> Peers:
        """Peer clients for a handler: in-process by default, else over `transport`.

        `settings` gives the peer timeouts (`SVC_*_TIMEOUT_S`, `PEER_TIMEOUT_S`).
        """
        settings = settings or load_settings(self.env(in_process=True), None)
        return build_peers(
            peers_config(settings), self.key, transport=transport or self.transport()
        )

    def network_peers(self, settings: Settings) -> Peers:
        """Peer clients reaching the started fakes over loopback (with `settings`' timeouts)."""
        return build_peers(peers_config(settings), self.key)

    # -- faults (see docs/peers.md) ---------------------------------------------

    def fail(self, peer: str, route: str | None = None, **kw: Any) -> Fault:
        """`status=503, times=2`: answer the next calls with an error."""
        return self.fake.fail(peer, route, **kw)

    def slow(self, peer: str, route: str | None = None, *, delay_s: float, **kw: Any) -> Fault:
        """Answer normally, after `delay_s`."""
        return self.fake.delay(peer, route, delay_s=delay_s, **kw)

    def hang(self, peer: str, route: str | None = None, **kw: Any) -> Fault:
        """Never answer (until `hang_s` or `stop()`)."""
        return self.fake.hang(peer, route, **kw)

    def answer(
        self,
        peer: str,
        route: str,
        *,
        status: int,
        body: Any = None,
        times: int | None = 1,
        retry_after: str | None = None,
    ) -> Fault:
        """Answer `route` (a handler name, e.g. `settle_cfb_bet`) with this status and body."""
        return self.fake.fail(
            peer, route, status=status, body=body, times=times, retry_after=retry_after
        )

    def reset_connection(self, peer: str, route: str | None = None, **kw: Any) -> Fault:
        return self.fake.reset_connection(peer, route, **kw)

    def requests(self, peer: str | None = None, path: str | None = None) -> list[RecordedRequest]:
        """The request log, oldest first; `path` is the part after the peer prefix."""
        return self.fake.requests(peer, path)

    def reset(self) -> None:
        """Forget entities, faults, remembered answers and the request log."""
        self.fake.reset()
