"""The audit stream: every operator change, from the console, the admin API or the CLI.

One capped Redis stream (`GlobalKeys.audit`, about `AUDIT_MAXLEN` entries, trimmed
approximately on each append so the cost stays O(1)) holds who (the token role or
the JWT subject), what (the action and its target), when (the entry id's time)
and through which surface. It lives in Redis, not in one worker's memory, so every
replica's console shows the same history; it is read newest first, paged.

An entry is appended by a script flagged `allow-oom` (lua/audit_append.lua): at
`maxmemory` the changes that free memory (dropping dead letters, draining) still
work, and their entry is written with them; a change Redis refuses there is
answered 503 by the callers and records nothing.
"""

from __future__ import annotations

import time
from typing import Any, Final

import msgspec
from redis.asyncio import Redis

from tgworkers.engine.wire.replies import text
from tgworkers.engine.wire.scripts import Scripts

AUDIT_MAXLEN: Final = 10_000
_json = msgspec.json.Encoder()
_decode = msgspec.json.Decoder(dict[str, Any])


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One recorded change; `id` is the stream entry id (the paging cursor)."""

    id: str
    at: int
    via: str
    who: str
    role: str
    action: str
    target: str
    details: dict[str, Any]


class AuditPage(msgspec.Struct, frozen=True, kw_only=True):
    """Newest first; `next` is the cursor of the following (older) page, or None."""

    items: list[AuditEntry]
    next: str | None


class AuditLog:
    """Appends to and reads the audit stream."""

    def __init__(self, redis: Redis, key: str, scripts: Scripts | None = None) -> None:
        self.redis = redis
        self.key = key
        self.scripts = scripts or Scripts(redis)

    async def record(
        self, *, via: str, who: str, role: str, action: str, target: str, **details: Any
    ) -> None:
        fields: dict[str, str | bytes] = {
            "via": via, "who": who, "role": role, "action": action, "target": target,
            "details": _json.encode(details), "at": str(int(time.time() * 1000)),
        }  # fmt: skip
        await self.scripts.audit_append(self.key, fields, maxlen=AUDIT_MAXLEN)

    async def page(self, *, limit: int, before: str | None = None) -> AuditPage:
        start = f"({before}" if before else "+"
        rows: Any = await self.redis.xrevrange(self.key, max=start, min="-", count=limit + 1)
        items = [self._entry(entry_id, fields) for entry_id, fields in rows[:limit]]
        more = len(rows) > limit
        return AuditPage(items=items, next=items[-1].id if more and items else None)

    @staticmethod
    def _entry(entry_id: Any, fields: dict[bytes, bytes]) -> AuditEntry:
        try:
            details = _decode.decode(fields.get(b"details", b"{}"))
        except msgspec.DecodeError:
            details = {}
        return AuditEntry(
            id=text(entry_id), at=int(text(fields.get(b"at")) or 0), via=text(fields.get(b"via")),
            who=text(fields.get(b"who")), role=text(fields.get(b"role")),
            action=text(fields.get(b"action")), target=text(fields.get(b"target")), details=details,
        )  # fmt: skip
