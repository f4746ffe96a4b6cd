"""Redis replies as text: the one bytes → str step every reader shares.

redis-py hands back `bytes` (the engine's clients never set `decode_responses`), or `str`
for a few parsed replies (XINFO's field names), or None for a missing hash field. Each
reader used to carry its own two-line helper with its own idea of a bad byte; here is one:
undecodable bytes are replaced, never raised, so one odd entry cannot break a listing.
"""

from __future__ import annotations


def text(raw: object) -> str:
    """`raw` as text: bytes decoded as UTF-8 (bad bytes replaced), None as "", else `str`."""
    if isinstance(raw, bytes):
        return raw.decode(errors="replace")
    return "" if raw is None else str(raw)
