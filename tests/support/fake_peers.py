"""The peer clients' configuration for tests: every peer at the fake peers on loopback."""

from __future__ import annotations

from tgworkers.devstack.fake_peers import PEERS, FakePeers
from tgworkers.peers import PeersConfig, PeerTimeouts

ISSUER = "tgworkers-test"


def peers_config(fake: FakePeers, *, total_s: float = 5.0, **overrides: object) -> PeersConfig:
    urls = {f"{peer}_url": fake.base_url(peer) for peer in PEERS}
    fields: dict[str, object] = {
        **urls,
        "issuer": ISSUER,
        "service_id": "tgworkers",
        "timeouts": PeerTimeouts(connect_s=1.0, total_s=total_s),
    }
    return PeersConfig(**{**fields, **overrides})
