"""`FakePeers`: every fake peer on ONE uvicorn server on a free loopback port.

Each peer lives under its own path prefix (`http://127.0.0.1:PORT/payhub`), which
also exercises the clients' "base URL with a path prefix" rule. `start()` and
`stop()` are synchronous (the server runs in a daemon thread with its own event
loop), so sync pytest fixtures, the `dev` command and a separate process can use it.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

import uvicorn

from tgworkers.devstack.fake_peers.app import (
    PEERS,
    FakePeersApp,
    SimulatedResetError,
    TokenVerifier,
)
from tgworkers.devstack.fake_peers.state import JSON, FakeState, Fault, RecordedRequest


class _DropSimulatedResets(logging.Filter):
    """Keeps uvicorn from logging a traceback for a reset the test asked for."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], SimulatedResetError))


class FakePeers:
    """The fake peers: seed with `.state`, script faults, read `.requests()`.

    Args:
        public_jwk: the service key's public JWK; tokens are verified against it.
            None turns verification off (for a dev stack without keys).
        issuer: the expected `iss` claim.
        clock: the peers' clock in Unix seconds (bets' `tEnd`, escrows' expiry).
    """

    def __init__(
        self,
        public_jwk: Mapping[str, Any] | None,
        *,
        issuer: str = "tgworkers",
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state = FakeState(clock=clock)
        verifier = TokenVerifier(public_jwk, issuer=issuer) if public_jwk is not None else None
        self._stopping = threading.Event()
        self._app = FakePeersApp(self.state, verifier, self._stopping).starlette()
        self._host = host
        self._port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def asgi_app(self) -> Any:
        """The fakes as an ASGI app: `httpx.ASGITransport(fake.asgi_app)` needs no server."""
        return self._app

    @property
    def port(self) -> int:
        return self._port

    def base_url(self, peer: str) -> str:
        if peer not in PEERS:
            raise ValueError(f"unknown peer {peer!r}; expected one of {', '.join(PEERS)}")
        return f"http://{self._host}:{self._port}/{peer}"

    def start(self, *, timeout_s: float = 10.0) -> FakePeers:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
            backlog=1024,
        )
        self._server = uvicorn.Server(config)
        logging.getLogger("uvicorn.error").addFilter(_DropSimulatedResets())
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="fake-peers", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"fake peers did not start within {timeout_s}s")
            time.sleep(0.01)
        return self

    def stop(self, *, timeout_s: float = 10.0) -> None:
        if self._server is None or self._thread is None:
            return
        self._stopping.set()  # hanging handlers give up at once
        self._server.should_exit = True
        self._thread.join(timeout_s)
        self._server = None
        self._thread = None

    def __enter__(self) -> FakePeers:
        return self.start()

    def __exit__(
        self, _: type[BaseException] | None, __: BaseException | None, ___: TracebackType | None
    ) -> None:
        self.stop()

    # -- inspection -----------------------------------------------------------

    def requests(self, peer: str | None = None, path: str | None = None) -> list[RecordedRequest]:
        """Requests seen, oldest first; `path` matches the suffix after the peer prefix."""
        with self.state.lock:
            seen = list(self.state.recorded)
        return [
            r
            for r in seen
            if (peer is None or r.peer == peer)
            and (path is None or r.path.removeprefix(f"/{r.peer}") == path)
        ]

    def reset(self) -> None:
        """Forget all state, faults, replayable answers and recorded requests."""
        self.state.clear()

    # -- fault injection ------------------------------------------------------

    def fail(
        self,
        peer: str | None,
        route: str | None = None,
        *,
        status: int,
        times: int | None = 1,
        body: bytes | JSON | None = None,
        retry_after: str | None = None,
    ) -> Fault:
        """Answer the next `times` matching calls with `status` (and `body`, `Retry-After`)."""
        fault = Fault(peer, route, times, status=status, body=body, retry_after=retry_after)
        return self.state.add_fault(fault)

    def hang(
        self,
        peer: str | None,
        route: str | None = None,
        *,
        times: int | None = 1,
        hang_s: float = 30.0,
    ) -> Fault:
        """Hold the next calls open without answering (until `hang_s` or `stop()`)."""
        return self.state.add_fault(Fault(peer, route, times, hang_s=hang_s))

    def delay(
        self,
        peer: str | None,
        route: str | None = None,
        *,
        delay_s: float,
        times: int | None = 1,
    ) -> Fault:
        """Answer normally, but only after `delay_s`."""
        return self.state.add_fault(Fault(peer, route, times, delay_s=delay_s))

    def reset_connection(
        self, peer: str | None, route: str | None = None, *, times: int | None = 1
    ) -> Fault:
        """Break the connection mid-answer on the next calls."""
        return self.state.add_fault(Fault(peer, route, times, reset=True))

    def clear_faults(self) -> None:
        with self.state.lock:
            self.state.faults.clear()
