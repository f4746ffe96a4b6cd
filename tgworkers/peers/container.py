"""`PeersConfig` (plain data, mapped from the parsed environment) and the `Peers` container.

Peers never read the environment: jobs/settings.py builds a `PeersConfig` and loads the
`ServiceKey`; `open_peers` builds one client per peer sharing one token cache.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import msgspec

from tgworkers.peers.auth import ServiceJWTAuth, ServiceKey, ServiceTokens
from tgworkers.peers.campaigns import CampaignsClient
from tgworkers.peers.discovery import DiscoveryClient
from tgworkers.peers.escrow import EscrowClient
from tgworkers.peers.http import MAX_BODY_BYTES, PeerClient, PeerTimeouts, RateGate
from tgworkers.peers.payhub import PayhubClient
from tgworkers.peers.playhub import PlayHubClient
from tgworkers.peers.price import PriceClient


class PeersConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Where the peers are and how to talk to them; `price_url` None means no price peer."""

    playhub_url: str
    payhub_url: str
    campaigns_url: str
    escrow_url: str
    discovery_url: str
    price_url: str | None = None
    issuer: str
    service_id: str
    alg: str = "EdDSA"
    timeouts: PeerTimeouts = PeerTimeouts()
    timeout_overrides: dict[str, PeerTimeouts] = {}
    """Per-peer timeouts by audience name (e.g. `{"payhub": PeerTimeouts(total_s=20)}`)."""
    max_body_bytes: int = MAX_BODY_BYTES


@dataclass(frozen=True, slots=True)
class Peers:
    """One client per peer, built once per process and shared by every job."""

    playhub: PlayHubClient
    payhub: PayhubClient
    campaigns: CampaignsClient
    escrow: EscrowClient
    discovery: DiscoveryClient
    price: PriceClient | None
    tokens: ServiceTokens

    def clients(self) -> tuple[PeerClient, ...]:
        every = (self.playhub, self.payhub, self.campaigns, self.escrow, self.discovery)
        return every if self.price is None else (*every, self.price)

    def use_rate_gate(self, gate: RateGate) -> None:
        """Every client takes a permit of its peer's shared limit before each call."""
        for client in self.clients():
            client.rate_gate = gate

    async def aclose(self) -> None:
        for client in self.clients():
            await client.aclose()


def build_peers(
    config: PeersConfig, key: ServiceKey, *, transport: httpx.AsyncBaseTransport | None = None
) -> Peers:
    """Build the clients (no I/O); close them with `Peers.aclose` or use `open_peers`.

    `transport` replaces the network (tgworkers.testing routes calls to the fake
    peers in-process, or to a test's own `httpx.MockTransport`).
    """
    tokens = ServiceTokens(key, issuer=config.issuer, subject=config.service_id, alg=config.alg)

    def make(cls: type[PeerClient], url: str) -> PeerClient:
        return cls(
            url,
            auth=ServiceJWTAuth(tokens, cls.audience),
            timeouts=config.timeout_overrides.get(cls.audience, config.timeouts),
            max_body_bytes=config.max_body_bytes,
            transport=transport,
        )

    price = make(PriceClient, config.price_url) if config.price_url else None
    return Peers(
        playhub=make(PlayHubClient, config.playhub_url),  # type: ignore[arg-type]
        payhub=make(PayhubClient, config.payhub_url),  # type: ignore[arg-type]
        campaigns=make(CampaignsClient, config.campaigns_url),  # type: ignore[arg-type]
        escrow=make(EscrowClient, config.escrow_url),  # type: ignore[arg-type]
        discovery=make(DiscoveryClient, config.discovery_url),  # type: ignore[arg-type]
        price=price,  # type: ignore[arg-type]
        tokens=tokens,
    )


@asynccontextmanager
async def open_peers(config: PeersConfig, key: ServiceKey) -> AsyncIterator[Peers]:
    """The peers for the life of a worker; every connection pool is closed on exit."""
    peers = build_peers(config, key)
    try:
        yield peers
    finally:
        await peers.aclose()
