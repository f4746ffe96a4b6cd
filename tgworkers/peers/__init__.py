"""Typed clients of the peer services, the service JWT and the answer table.

Job modules import from here only. Every client raises `PeerError` subclasses of
the engine's signals, so a handler holds only the happy path. See docs/peers.md.
"""

from tgworkers.engine import request_id_var
from tgworkers.peers.answers import AnswerKind, PeerAnswer, classify
from tgworkers.peers.auth import ServiceJWTAuth, ServiceKey, ServiceTokens
from tgworkers.peers.campaigns import CampaignsClient
from tgworkers.peers.container import Peers, PeersConfig, build_peers, open_peers
from tgworkers.peers.discovery import DiscoveryClient
from tgworkers.peers.errors import (
    PeerAuthError,
    PeerConnectionError,
    PeerError,
    PeerNotDueError,
    PeerPermanentError,
    PeerRetryableError,
    PeerTimeoutError,
    PeerTransientError,
    PeerUnexpectedError,
)
from tgworkers.peers.escrow import EscrowClient
from tgworkers.peers.http import PeerClient, PeerTimeouts, auth_rejected_hooks
from tgworkers.peers.models import Effect, Hold, Money, Payout, Reference
from tgworkers.peers.payhub import PayhubClient, RewardRequest, SettlementRequest
from tgworkers.peers.playhub import PlayHubClient, PriceBar
from tgworkers.peers.price import PriceClient

__all__ = [
    "AnswerKind",
    "CampaignsClient",
    "DiscoveryClient",
    "Effect",
    "EscrowClient",
    "Hold",
    "Money",
    "PayhubClient",
    "Payout",
    "PeerAnswer",
    "PeerAuthError",
    "PeerClient",
    "PeerConnectionError",
    "PeerError",
    "PeerNotDueError",
    "PeerPermanentError",
    "PeerRetryableError",
    "PeerTimeoutError",
    "PeerTimeouts",
    "PeerTransientError",
    "PeerUnexpectedError",
    "Peers",
    "PeersConfig",
    "PlayHubClient",
    "PriceBar",
    "PriceClient",
    "Reference",
    "RewardRequest",
    "ServiceJWTAuth",
    "ServiceKey",
    "ServiceTokens",
    "SettlementRequest",
    "auth_rejected_hooks",
    "build_peers",
    "classify",
    "open_peers",
    "request_id_var",
]
