"""What the platform's jobs read from configuration, and what their processors require.

Jobs never read the environment: `run` builds one frozen `JobSettings` from the
validated `Settings` and registers it as a resource (`ctx.resources(JobSettings)`),
and builds the peers' `PeersConfig` with `peers_config`. `missing_requirements`
tells which variables a processor's `requires` names are unset, so `run` can
refuse (or skip) a processor with one line naming them.
"""

from __future__ import annotations

from typing import Final

import msgspec

from tgworkers.config import Settings
from tgworkers.engine import Processor
from tgworkers.peers import PeersConfig, PeerTimeouts

CFB_SWEEP_GRACE_MS: Final = 60_000
"""How long after `tEnd` a bet may stay open before the sweep re-enqueues it.

Not a variable yet (contracts/jobs.md names none): the PlayHub enqueue at `tEnd`
normally settles a bet within seconds, so a minute's grace keeps the sweep from
racing it while still catching lost enqueues on the next tick.
"""

UNSET_PEER_URL: Final = "http://unset.invalid/{peer}"
"""Stand-in base URL of a peer no selected processor requires (never called)."""


class JobSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The configuration values the jobs use, read once at start."""

    orphan_hold_ttl_ms: int = 3_600_000
    campaign_proof_deadline_ms: int = 86_400_000
    cfb_price_symbols: tuple[str, ...] = ("TON-USD",)
    price_bars_retention_min: int = 1440
    cfb_sweep_grace_ms: int = CFB_SWEEP_GRACE_MS

    @classmethod
    def from_settings(cls, settings: Settings) -> JobSettings:
        return cls(
            orphan_hold_ttl_ms=settings.orphan_hold_ttl_ms,
            campaign_proof_deadline_ms=settings.campaign_proof_deadline_ms,
            cfb_price_symbols=settings.cfb_price_symbols,
            price_bars_retention_min=settings.price_bars_retention,
        )


def _is_set(settings: Settings, variable: str) -> bool:
    if variable == "SERVICE_JWT_PRIVATE_JWK":
        return settings.service_jwt_private_jwk is not None
    if variable.startswith("SVC_") and variable.endswith("_URL"):
        return bool(settings.peer_urls.get(variable[4:-4].lower()))
    raise ValueError(f"unknown requirement {variable!r}")


def missing_requirements(settings: Settings, processor: Processor) -> list[str]:
    """The variables `processor.requires` that are unset, in declaration order."""
    return [v for v in processor.requires if not _is_set(settings, v)]


def needs_peers(processors: tuple[Processor, ...]) -> bool:
    """Whether any of `processors` calls a peer (requires a `SVC_*_URL`)."""
    return any(v.startswith("SVC_") for p in processors for v in p.requires)


def peers_config(settings: Settings) -> PeersConfig:
    """The peers' configuration from `SVC_*_URL`, `SVC_*_TIMEOUT_S` and the JWT settings."""

    def url(peer: str) -> str:
        return settings.peer_urls.get(peer) or UNSET_PEER_URL.format(peer=peer)

    connect = settings.peer_connect_timeout_s
    return PeersConfig(
        playhub_url=url("playhub"),
        payhub_url=url("payhub"),
        campaigns_url=url("campaigns"),
        escrow_url=url("escrow"),
        discovery_url=url("discovery"),
        price_url=settings.peer_urls.get("price"),
        issuer=settings.service_jwt_issuer,
        service_id=settings.service_id,
        alg=settings.service_jwt_alg,
        timeouts=PeerTimeouts(connect_s=connect, total_s=settings.peer_total_timeout_s),
        timeout_overrides={
            peer: PeerTimeouts(connect_s=connect, total_s=total)
            for peer, total in settings.peer_timeout_s.items()
        },
    )


def requires_peers(*peers: str) -> tuple[str, ...]:
    """A processor's `requires`: each peer's `SVC_*_URL`, then the service key."""
    return (*(f"SVC_{peer.upper()}_URL" for peer in peers), "SERVICE_JWT_PRIVATE_JWK")
