"""The job envelope: what one stream entry carries, and its codec.

An entry's fields are flat strings so a producer in any language can write one
with a plain XADD (docs/wire-format.md). The payload is JSON text, validated
against the job type's Struct when enqueued and again when run. The history holds
one record per failed attempt (and per operator replay) so a dead-lettered job
tells its whole story; it never holds request headers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import msgspec

from tgworkers.engine.keys import Field

BODY_LIMIT_BYTES: Final = 2048
MESSAGE_LIMIT_CHARS: Final = 1000


class HistoryEntry(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One event in a job's life worth keeping: a failed attempt or a replay."""

    attempt: int
    at_ms: int
    kind: str
    message: str
    status: int | None = None
    body: str | None = None


class Envelope(msgspec.Struct, frozen=True, kw_only=True):
    """A job as it travels through the queue (the stream entry, decoded)."""

    id: str
    name: str
    payload: bytes
    enqueued_ms: int
    attempt: int = 1
    due_ms: int | None = None
    key: str | None = None
    origin: str | None = None
    traceparent: str | None = None
    tracestate: str | None = None
    history: tuple[HistoryEntry, ...] = ()
    auto_id: bool = False


class MalformedEntryError(ValueError):
    """A stream entry that is not a job envelope; the message names the problem."""


_history_encoder = msgspec.json.Encoder()
_history_decoder = msgspec.json.Decoder(tuple[HistoryEntry, ...])
_fields_encoder = msgspec.json.Encoder()
_fields_decoder = msgspec.json.Decoder(list[str])


def cut(text: str, limit: int = BODY_LIMIT_BYTES) -> str:
    """`text` cut to at most `limit` UTF-8 bytes, never splitting a character."""
    raw = text.encode()
    if len(raw) <= limit:
        return text
    return raw[:limit].decode(errors="ignore")


def to_fields(env: Envelope) -> list[str | bytes]:
    """The envelope as alternating field names and values, ready for XADD."""
    out: list[str | bytes] = [
        Field.ID, env.id, Field.NAME, env.name, Field.PAYLOAD, env.payload,
        Field.ATTEMPT, str(env.attempt), Field.ENQUEUED_MS, str(env.enqueued_ms),
    ]  # fmt: skip
    optional = (
        (Field.KEY, env.key),
        (Field.ORIGIN, env.origin),
        (Field.TRACEPARENT, env.traceparent),
        (Field.TRACESTATE, env.tracestate),
    )
    for name, value in optional:
        if value is not None:
            out += (name, value)
    if env.history:
        out += (Field.ERRORS, _history_encoder.encode(env.history))
    if env.auto_id:
        out += (Field.AUTO_ID, "1")
    return out


def fields_json(fields: list[str | bytes]) -> bytes:
    """Fields as a JSON array of strings: how a delayed job waits in its hash."""
    return _fields_encoder.encode([f if isinstance(f, str) else f.decode() for f in fields])


def fields_from_json(raw: bytes) -> dict[bytes, bytes]:
    """Inverse of `fields_json`, in the shape redis-py returns stream fields."""
    flat = _fields_decoder.decode(raw)
    return {flat[i].encode(): flat[i + 1].encode() for i in range(0, len(flat) - 1, 2)}


def _int_field(fields: Mapping[bytes, bytes], name: str, default: int | None) -> int | None:
    raw = fields.get(name.encode())
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise MalformedEntryError(f"field {name!r} is not an integer: {raw[:40]!r}") from None


def _text(fields: Mapping[bytes, bytes], name: str) -> str | None:
    raw = fields.get(name.encode())
    if raw is None:
        return None
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise MalformedEntryError(f"field {name!r} is not UTF-8") from None


def from_fields(fields: Mapping[bytes, bytes], *, entry_ms: int) -> Envelope:
    """Decode a stream entry; `entry_ms` (the entry id's time) fills missing times.

    Raises:
        MalformedEntryError: naming the missing or malformed field.
    """
    job_id, name = _text(fields, Field.ID), _text(fields, Field.NAME)
    payload = fields.get(Field.PAYLOAD.encode())
    for field_name, value in ((Field.ID, job_id), (Field.NAME, name), (Field.PAYLOAD, payload)):
        if not value:
            raise MalformedEntryError(f"missing field {field_name!r}")
    assert job_id is not None  # noqa: S101
    assert name is not None  # noqa: S101
    assert payload is not None  # noqa: S101
    attempt = _int_field(fields, Field.ATTEMPT, 1) or 1
    history_raw = fields.get(Field.ERRORS.encode())
    try:
        history = _history_decoder.decode(history_raw) if history_raw else ()
    except msgspec.DecodeError as exc:
        raise MalformedEntryError(f"field 'errors' is not a history: {exc}") from None
    return Envelope(
        id=job_id,
        name=name,
        payload=payload,
        attempt=max(attempt, 1),
        enqueued_ms=_int_field(fields, Field.ENQUEUED_MS, entry_ms) or entry_ms,
        due_ms=_int_field(fields, Field.DUE_MS, None),
        key=_text(fields, Field.KEY),
        origin=_text(fields, Field.ORIGIN),
        traceparent=_text(fields, Field.TRACEPARENT),
        tracestate=_text(fields, Field.TRACESTATE),
        history=history,
        auto_id=fields.get(Field.AUTO_ID.encode()) == b"1",
    )


def entry_time_ms(entry_id: bytes | str) -> int:
    """The Unix ms time encoded in a stream entry id (`<ms>-<seq>`)."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.split("-", 1)[0])
