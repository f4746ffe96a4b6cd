"""Fixtures for the jobs: a service key, the fake peers (one server per session), a worker."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from joserfc.jwk import OKPKey
from tests.support.platform_jobs import ISSUER, jobs_worker

from tgworkers.devstack.fake_peers import FakePeers
from tgworkers.peers import ServiceKey


@pytest.fixture(scope="session")
def jwk_text() -> str:
    return json.dumps(OKPKey.generate_key("Ed25519").as_dict(private=True))


@pytest.fixture(scope="session")
def fake_server(jwk_text: str) -> Iterator[FakePeers]:
    fake = FakePeers(ServiceKey.from_jwk_text(jwk_text).public_jwk(), issuer=ISSUER).start()
    yield fake
    fake.stop()


@pytest.fixture
def fake(fake_server: FakePeers) -> FakePeers:
    """The session's fake peers, emptied for this test."""
    fake_server.reset()
    return fake_server


@pytest.fixture
def jobs(redis_url: str, fake: FakePeers, jwk_text: str) -> Any:
    """`async with jobs("escrow", ENV=value) as h:` a worker running those processors."""

    def start(processors: str, **env: Any) -> Any:
        return jobs_worker(redis_url, fake, jwk_text, processors, **env)

    return start
