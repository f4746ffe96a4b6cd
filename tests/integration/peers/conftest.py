"""Fixtures for the peer clients: a test Ed25519 key and the fake peers on loopback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import pytest
from joserfc.jwk import OKPKey
from tests.support.fake_peers import ISSUER, peers_config

from tgworkers.devstack.fake_peers import FakePeers
from tgworkers.peers import Peers, ServiceKey, open_peers


@pytest.fixture(scope="session")
def private_jwk_text() -> str:
    return json.dumps(OKPKey.generate_key("Ed25519").as_dict(private=True))


@pytest.fixture(scope="session")
def service_key(private_jwk_text: str) -> ServiceKey:
    return ServiceKey.from_jwk_text(private_jwk_text)


@pytest.fixture(scope="session")
def fake_peers_server(service_key: ServiceKey) -> Iterator[FakePeers]:
    fake = FakePeers(service_key.public_jwk(), issuer=ISSUER).start()
    yield fake
    fake.stop()


@pytest.fixture
def fake_peers(fake_peers_server: FakePeers) -> FakePeers:
    """The session's fake peers, emptied for this test."""
    fake_peers_server.reset()
    return fake_peers_server


@pytest.fixture
async def peers(fake_peers: FakePeers, service_key: ServiceKey) -> AsyncIterator[Peers]:
    async with open_peers(peers_config(fake_peers), service_key) as opened:
        yield opened
