"""How a delivery ends on this worker: exactly one settle item per decision.

Pure builders over a `Delivery` and a `Decision` (retry.py): the executor calls them at
the end of a run (or instead of one: a bad entry, an expired deadline, a cancel, a
shutdown), recovery for a poison job; the runtime sends the items in batches, one script
call per partition and kind. Nothing here touches Redis or a delivery's state.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, assert_never

import msgspec

from tgworkers.engine.outcome import DeadReason, Disposition
from tgworkers.engine.retry import Decision
from tgworkers.engine.runtime.delivery import Delivery
from tgworkers.engine.wire.envelope import Envelope, HistoryEntry, fields_json, to_fields
from tgworkers.engine.wire.keys import Field
from tgworkers.engine.wire.script_items import DeadItem, DoneItem, HandBackItem, LaterItem


class SettleKind(enum.Enum):
    """What the runtime does with a finished delivery."""

    DONE = "done"
    LATER = "later"
    DEAD = "dead"
    HAND_BACK = "hand_back"
    DROP = "drop"


@dataclass(slots=True)
class Settlement:
    """How one delivery ends on this worker: the script item to send, if any."""

    kind: SettleKind
    delivery: Delivery
    item: DoneItem | LaterItem | DeadItem | HandBackItem | None = None
    decision: Decision | None = None
    duration_s: float = 0.0


_DONE: Final = Disposition.DONE
_SETTLE_DONE: Final = SettleKind.DONE
"""Module constants: `Disposition.DONE` is a metaclass lookup each time it is read."""


def now_ms() -> int:
    return int(time.time() * 1000)


def invalid_record(d: Delivery, problem: str) -> HistoryEntry | None:
    """The history entry of a job dead-lettered before it ran (None: no envelope to hold it)."""
    if d.envelope is None or d.problem is not None:
        return None
    return HistoryEntry(attempt=d.envelope.attempt, at_ms=now_ms(), kind="invalid", message=problem)


def cancelled_decision(env: Envelope, by: str) -> Decision:
    """Dead-letter a run an operator cancelled, naming who; the attempt is recorded."""
    message = f"cancelled by {by}"
    record = HistoryEntry(attempt=env.attempt, at_ms=now_ms(), kind="cancelled", message=message)
    return Decision(
        disposition=Disposition.DEAD, record=record, reason=message,
        dead_reason=DeadReason.CANCELLED,
    )  # fmt: skip


def settlement(
    d: Delivery, env: Envelope, dec: Decision, engine_ms: Callable[[int], int]
) -> Settlement:
    """The one settle item of `dec`; `engine_ms` puts a handler's absolute time on Redis's clock."""
    if dec.disposition is _DONE:  # nearly every job, so before the `match` and its lookups
        done = DoneItem(d.entry_id, env.id, not env.auto_id, d.lock, d.token)
        return Settlement(_SETTLE_DONE, d, done, dec)
    match dec.disposition:
        case Disposition.RETRY | Disposition.SNOOZE:
            retry = dec.disposition is Disposition.RETRY
            nxt = msgspec.structs.replace(
                env,
                attempt=env.attempt + 1 if retry else env.attempt,
                history=env.history + ((dec.record,) if dec.record else ()),
                due_ms=None,
                snoozes=0,  # the script counts a past-due snooze (from env.snoozes)
                waits=0,
            )
            blob = fields_json(to_fields(nxt))
            at_ms = engine_ms(dec.at_ms) if dec.at_ms else 0
            later = LaterItem(
                d.entry_id, env.id, at_ms, dec.delay_ms, retry, blob, d.lock,
                d.token, snoozes=env.snoozes,
            )  # fmt: skip
            return Settlement(SettleKind.LATER, d, later, dec)
        case Disposition.DEAD:
            why = dec.dead_reason or DeadReason.HANDLER
            return dead(d, dec.reason or "dead-lettered", failed=True, record=dec.record, why=why)
        case _ as unreachable:
            assert_never(unreachable)


def dead(
    d: Delivery,
    reason: str,
    *,
    failed: bool,
    record: HistoryEntry | None = None,
    why: DeadReason = DeadReason.INVALID,
) -> Settlement:
    """Dead-letter a delivery; a malformed entry keeps its raw fields untouched."""
    env = d.envelope
    if env is None or (d.problem is not None):
        fields: list[str | bytes] = [x for kv in d.fields.items() for x in kv]
    else:
        history = env.history + ((record,) if record else ())
        fields = to_fields(msgspec.structs.replace(env, history=history, due_ms=None))
    fields += [Field.REASON, reason]
    item = DeadItem(d.entry_id, d.job_id, failed, fields, d.lock, d.token)
    return Settlement(
        SettleKind.DEAD,
        d,
        item,
        Decision(disposition=Disposition.DEAD, reason=reason, dead_reason=why),
    )


def expired(d: Delivery, env: Envelope) -> Settlement:
    """Dead-letter a job delivered at or after its deadline; its handler never runs."""
    deadline = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((env.expires_ms or 0) / 1000))
    message = f"expired at {deadline} (expiresAt {env.expires_ms}) before it ran"
    record = HistoryEntry(attempt=env.attempt, at_ms=now_ms(), kind="expired", message=message)
    return dead(d, "expired", failed=False, record=record, why=DeadReason.EXPIRED)


def hand_back(d: Delivery) -> Settlement:
    """Give an unfinished job back to the queue as a fresh entry (shutdown)."""
    if d.envelope is None:
        fields: list[str | bytes] = [x for kv in d.fields.items() for x in kv]
    else:
        fields = to_fields(msgspec.structs.replace(d.envelope, due_ms=None))
    return Settlement(
        SettleKind.HAND_BACK, d, HandBackItem(d.entry_id, d.job_id, fields, d.lock, d.token)
    )


def ended_early(d: Delivery) -> Settlement:
    """A lost delivery is dropped (fenced: someone else owns it); shutdown hands back."""
    return Settlement(SettleKind.DROP, d) if d.lost else hand_back(d)
