"""Price service client (optional peer): latest prices for the CFB price sampler."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import msgspec

from tgworkers.peers.http import PeerClient
from tgworkers.peers.models import Wire


class Price(Wire, frozen=True, kw_only=True):
    """A price as a decimal string, observed at `ts_ms`."""

    symbol: str
    price: str
    ts_ms: int = msgspec.field(name="ts")


class _Prices(Wire, frozen=True, kw_only=True):
    prices: list[Price]


_PRICES: Final = msgspec.json.Decoder(_Prices)


class PriceClient(PeerClient):
    """Typed calls to the price service (aud `price`)."""

    audience = "price"

    async def get_prices(self, symbols: Sequence[str]) -> list[Price]:
        if not symbols:
            return []
        raw = await self._get("/internal/v1/prices", params={"symbols": ",".join(symbols)})
        return self._decode(_PRICES, raw, "get_prices").prices
