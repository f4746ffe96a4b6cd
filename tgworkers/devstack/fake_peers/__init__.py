"""Fake peer services: real HTTP servers on loopback that follow contracts/peers.md.

Used by the integration tests and served by the `dev` command. See docs/peers.md
for the fault-injection API.
"""

from tgworkers.devstack.fake_peers.app import PEERS, ROUTES, TokenVerifier
from tgworkers.devstack.fake_peers.server import FakePeers
from tgworkers.devstack.fake_peers.state import FakeState, Fault, RecordedRequest

__all__ = ["PEERS", "ROUTES", "FakePeers", "FakeState", "Fault", "RecordedRequest", "TokenVerifier"]
