"""`python -m tgworkers.devstack.fake_peers --port N --public-jwk '{...}'`: serve the fakes.

Runs until SIGINT/SIGTERM. `--public-jwk` takes JSON or `@path`; without it
tokens are not verified (a dev stack without keys).
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
from pathlib import Path

import structlog

from tgworkers.devstack.fake_peers.app import PEERS
from tgworkers.devstack.fake_peers.server import FakePeers

log = structlog.get_logger(__name__)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tgworkers.devstack.fake_peers")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--public-jwk", default=None, help="JSON text or @path")
    parser.add_argument("--issuer", default="tgworkers")
    args = parser.parse_args(argv)
    text: str | None = args.public_jwk
    if text is not None and text.startswith("@"):
        text = Path(text[1:]).read_text(encoding="utf-8")
    public = json.loads(text) if text else None
    fake = FakePeers(public, issuer=args.issuer, host=args.host, port=args.port).start()
    log.info("fake_peers.started", port=fake.port, urls={p: fake.base_url(p) for p in PEERS})
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    fake.stop()
    log.info("fake_peers.stopped")


if __name__ == "__main__":
    main()
