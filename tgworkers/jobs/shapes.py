"""The shape the platform's job modules share: one job per entity, holds released once.

Most jobs act on one entity (an escrow, a match, a claim, a proof): their id is
`{job name}:{entity id}`, so enqueueing twice is a no-op, and the entity id is their
partition (and exclusivity) key. `one_per` declares that once, so a job id template
cannot drift from its job's name. `release_holds` is the step the escrow and games
jobs share: each hold released once, under its own key, recorded in the step record.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol, TypeVar

import msgspec

from tgworkers.engine import JobContext, JobType, Outcome
from tgworkers.peers import Peers
from tgworkers.peers.payhub import ReleaseReason

P = TypeVar("P", bound=msgspec.Struct)


def one_per(  # noqa: PLR0913 - a declaration, every field keyword-only
    entity: Callable[[P], str],
    *,
    name: str,
    payload: type[P],
    handler: Callable[[JobContext, P], Awaitable[Outcome]],
    exclusive: bool = False,
    timeout_s: float,
    validate: Callable[[P], None] | None = None,
) -> JobType[P]:
    """A job type with one job per entity: id `{name}:{entity}`, partitioned by the entity."""
    return JobType(
        name=name,
        payload=payload,
        handler=handler,
        job_id=lambda p: f"{name}:{entity(p)}",
        partition_key=entity,
        exclusive=exclusive,
        timeout_s=timeout_s,
        validate=validate,
    )


class ReleaseKeys(msgspec.Struct, frozen=True, kw_only=True):
    """Keys of a job that releases holds: one Idempotency-Key per hold, under one prefix."""

    release_prefix: str

    def release(self, hold_id: str) -> str:
        return f"{self.release_prefix}{hold_id}"


class Hold(Protocol):
    """Anything with a hold id (an escrow's holds, a match's holds)."""

    @property
    def hold_id(self) -> str: ...


async def release_holds(
    ctx: JobContext,
    peers: Peers,
    holds: Iterable[Hold],
    *,
    reason: ReleaseReason,
    key_of: Callable[[str], str],
) -> None:
    """Release each hold once: step `release:{holdId}`; 409 `hold_not_active` counts as done."""
    for hold in holds:
        release = functools.partial(
            peers.payhub.release_hold, hold.hold_id, reason=reason, key=key_of(hold.hold_id)
        )
        await ctx.steps.once(f"release:{hold.hold_id}", release)
