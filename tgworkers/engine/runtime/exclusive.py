"""Per-key exclusivity helpers: how long a job whose key is held waits, and as what.

The locks themselves are taken by `acquire_keys.lua` (promise 6); a job whose key
is held goes back to the delayed set, counting its waits in a row so each wait is
longer than the last.
"""

from __future__ import annotations

import random
from typing import Final

import msgspec

from tgworkers.engine.runtime.delivery import Delivery
from tgworkers.engine.wire.envelope import fields_json, to_fields

EXCLUSIVE_WAIT_MS: Final = 200
EXCLUSIVE_WAIT_MAX_MS: Final = 5_000


def exclusive_wait_ms(waits: int, rng: random.Random | None = None) -> int:
    """How long a job whose key is held waits: doubling per wait in a row, capped, jittered.

    A fixed 200 ms had every waiter of a long-held key retry five times a second
    forever; half to all of the doubled ceiling spreads waiters of one key apart.
    """
    ceiling = min(EXCLUSIVE_WAIT_MS * 2 ** min(waits, 20), EXCLUSIVE_WAIT_MAX_MS)
    return int((rng or random).uniform(ceiling / 2, ceiling))


def waiting_fields(d: Delivery) -> bytes:
    """The job as it waits for its key (JSON fields): one more wait in a row counted."""
    if d.envelope is None:
        return fields_json([x for kv in d.fields.items() for x in kv])
    waiting = msgspec.structs.replace(d.envelope, waits=d.envelope.waits + 1, due_ms=None)
    return fields_json(to_fields(waiting))
