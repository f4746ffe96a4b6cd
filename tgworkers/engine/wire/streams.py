"""Stream entries as typed pairs: the one XRANGE shape the operator API and runtime share.

Its own module in the wire layer so the operator API (DLQ, browsing) reads entries without
importing the runtime's broker.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

Entry = tuple[bytes, dict[bytes, bytes]]


async def xrange_entries(
    redis: Redis, key: str, start: str | bytes, end: str | bytes = "+", count: int | None = None
) -> list[Entry]:
    """XRANGE with the reply typed as (entry id, fields) pairs."""
    reply: Any = await redis.xrange(key, min=start, max=end, count=count)
    return [(entry_id, fields or {}) for entry_id, fields in reply or []]
