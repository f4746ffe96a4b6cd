"""PlayHub client: CFB bets and prices, and games (matches) to settle."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Final, Literal
from urllib.parse import quote

import msgspec

from tgworkers.peers.answers import AnswerKind
from tgworkers.peers.http import PeerClient
from tgworkers.peers.models import Effect, Hold, Page, Payout, Wire


class CfbSettled(Wire, frozen=True, kw_only=True):
    """A settled (or already settled) CFB bet."""

    bet_id: str
    status: Literal["settled", "already_settled"]


class OpenBet(Wire, frozen=True, kw_only=True):
    """An open CFB bet and its end time."""

    bet_id: str
    t_end_ms: int = msgspec.field(name="tEnd")


class OpenBetsPage(Page, frozen=True, kw_only=True):
    """One page of `OpenBet`s."""

    items: list[OpenBet]


class PriceBar(Wire, frozen=True, kw_only=True):
    """One minute bar; prices are decimal strings, `minute_ms` the minute's start."""

    symbol: str
    minute_ms: int = msgspec.field(name="minute")
    open: str
    high: str
    low: str
    close: str
    samples: int


class _PriceBars(Wire, frozen=True, kw_only=True):
    bars: Sequence[PriceBar]


class PricesStored(Wire, frozen=True, kw_only=True):
    """How many price bars PlayHub stored."""

    stored: int


class Match(Wire, frozen=True, kw_only=True):
    """A game match; `payouts` when finished, `holds` to release when cancelled."""

    match_id: str
    status: Literal["in_progress", "finished", "cancelled", "settled"]
    holds: list[Hold] = msgspec.field(default_factory=list)
    payouts: list[Payout] = msgspec.field(default_factory=list)


class _MarkSettled(Wire, frozen=True, kw_only=True):
    settlement_id: str


class MatchMarked(Wire, frozen=True, kw_only=True):
    """The match after it was marked settled."""

    match_id: str
    status: str


_SETTLED: Final = msgspec.json.Decoder(CfbSettled)
_OPEN_BETS: Final = msgspec.json.Decoder(OpenBetsPage)
_STORED: Final = msgspec.json.Decoder(PricesStored)
_MATCH: Final = msgspec.json.Decoder(Match)
_MARKED: Final = msgspec.json.Decoder(MatchMarked)


class PlayHubClient(PeerClient):
    """Typed calls to PlayHub (aud `playhub`)."""

    audience = "playhub"

    async def settle_cfb_bet(self, bet_id: str, *, key: str) -> CfbSettled:
        """Settle one bet; raises `PeerNotDueError` (retry at `tEnd`) before its end."""
        _, raw = await self._post("/internal/v1/cfb/settle", {"betId": bet_id}, key=key)
        return self._decode(_SETTLED, raw, "settle_cfb_bet")

    async def open_bets(self, *, ends_before_ms: int, limit: int = 100) -> AsyncIterator[OpenBet]:
        """Open bets ending before `ends_before_ms`, oldest first, across every page."""
        params: dict[str, str | int] = {
            "status": "open",
            "endsBefore": ends_before_ms,
            "limit": limit,
        }
        async for page in self._pages("/internal/v1/cfb/bets", params, _OPEN_BETS, "open_bets"):
            for bet in page.items:
                yield bet

    async def store_price_bars(self, bars: Sequence[PriceBar], *, key: str) -> int:
        """Store minute bars; returns how many the peer stored."""
        _, raw = await self._post("/internal/v1/cfb/prices", _PriceBars(bars=bars), key=key)
        return self._decode(_STORED, raw, "store_price_bars").stored

    async def get_match(self, match_id: str) -> Match:
        raw = await self._get(f"/internal/v1/games/{quote(match_id, safe='')}")
        return self._decode(_MATCH, raw, "get_match")

    async def mark_match_settled(self, match_id: str, *, settlement_id: str, key: str) -> Effect:
        """Mark a match finalized; 409 `already_done` is success (`Effect.ALREADY_DONE`)."""
        answer, raw = await self._post(
            f"/internal/v1/games/{quote(match_id, safe='')}/settled",
            _MarkSettled(settlement_id=settlement_id),
            key=key,
        )
        if answer.kind is AnswerKind.SUCCESS_EQUIVALENT:
            return Effect.ALREADY_DONE
        self._decode(_MARKED, raw, "mark_match_settled")
        return Effect.APPLIED
