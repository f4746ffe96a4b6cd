"""Stored jobs as the operator API shows them: the one decoder of what a listing reads.

A job is stored as stream fields (ready, in flight, dead) or as those fields in a JSON
record (a delayed job). Listings decode it leniently: a malformed entry comes back as None
(the caller still shows its raw id and name), and a payload that is not JSON comes back
as text, so one odd entry never breaks a page. The runtime decodes strictly on its own
(`wire/envelope.from_fields`): a job it cannot read goes to the DLQ.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from tgworkers.engine.wire.envelope import (
    Envelope,
    MalformedEntryError,
    entry_time_ms,
    fields_from_json,
    from_fields,
)

__all__ = ["Envelope", "envelope_of", "payload_of", "record_envelope"]

_json = msgspec.json.Decoder()


def envelope_of(fields: Mapping[bytes, bytes], entry: bytes | str = "") -> Envelope | None:
    """The job in a stream entry's fields (`entry`: its id, if any); None when malformed."""
    try:
        return from_fields(fields, entry_ms=entry_time_ms(entry) if entry else 0)
    except MalformedEntryError:
        return None


def record_envelope(record: bytes) -> Envelope | None:
    """The job in a delayed job's record (its fields as JSON); None when malformed."""
    try:
        return envelope_of(fields_from_json(record))
    except msgspec.DecodeError:
        return None


def payload_of(raw: bytes) -> Any:
    """A payload as JSON values, or as text when it is not JSON."""
    try:
        return _json.decode(raw)
    except msgspec.DecodeError:
        return raw.decode(errors="replace")
