"""Discovery client: is a user a member of a channel (for `channel_join` proofs)."""

from __future__ import annotations

from typing import Final
from urllib.parse import quote

import msgspec

from tgworkers.peers.http import PeerClient
from tgworkers.peers.models import Wire


class Membership(Wire, frozen=True, kw_only=True):
    """Whether the user is a channel member, as Discovery saw it at `checked_at_ms`."""

    member: bool
    checked_at_ms: int = msgspec.field(name="checkedAt")


_MEMBERSHIP: Final = msgspec.json.Decoder(Membership)


class DiscoveryClient(PeerClient):
    """Typed calls to Discovery (aud `discovery`)."""

    audience = "discovery"

    async def check_member(self, channel_id: str, user_id: str) -> Membership:
        path = (
            f"/internal/v1/channels/{quote(channel_id, safe='')}/members/{quote(user_id, safe='')}"
        )
        return self._decode(_MEMBERSHIP, await self._get(path), "check_member")
