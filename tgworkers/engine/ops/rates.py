"""Rate limits shared by every worker: per queue (jobs started) and per peer (calls).

One Lua script (`lua/rate_take.lua`, a GCRA on Redis's clock) hands out permits
from one hash per limit, so "at most 50 calls a second to PlayHub" holds for all
replicas together, not per process. A permit due within `MAX_WAIT_MS` is booked
and the caller sleeps until it; a later one is refused and the job goes back to
the delayed set for that long. Neither spends an attempt: a queue's permit is
taken before the handler runs, and a peer's refusal is a `NotDue` signal.

Limits come from the settings (`RATE_QUEUE_<P>_PER_S`, `RATE_<PEER>_PER_S`) and
are read per permit through the `Live` reference, so a hot reload applies to the
next job. The script stores the rate and its counters with the state, which is
what stats, the admin API and the console show.

The script is registered here, not in `scripts.py`: it touches no partition key
and no delivery, so it needs none of the fencing rules written there.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

import anyio
import msgspec
from redis.asyncio import Redis

from tgworkers.engine.live import Live
from tgworkers.engine.outcome import NotDue
from tgworkers.engine.settings import EngineSettings
from tgworkers.engine.telemetry import recorder as telemetry
from tgworkers.engine.wire.keys import GlobalKeys
from tgworkers.engine.wire.scripts import Scripts

MAX_WAIT_MS: Final = 2_000
"""Longest a worker sleeps for a booked permit; a later one goes back to the delayed set."""
BURST: Final = 1
"""Permits that may go at once after a quiet spell: 1 keeps calls evenly spaced."""

PeerGate = Callable[[str], Awaitable[None]]
"""Awaited before each peer call (argument: the peer's name); may raise `RateLimitedError`."""


class RateLimitedError(NotDue):
    """A peer's shared rate limit has no permit soon: run the job later, attempt unspent."""


class Permit(msgspec.Struct, frozen=True):
    """The script's answer: booked after `wait_ms`, or refused for `wait_ms`."""

    wait_ms: int
    booked: bool


class RateLimitState(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """One configured limit as stats and the admin API show it."""

    scope: str
    name: str
    per_s: float
    allowed: int = 0
    waited: int = 0
    refused: int = 0


def configured(settings: EngineSettings, queue_of: dict[str, str]) -> list[tuple[str, str, float]]:
    """(scope, name, per second) of every configured limit; `queue_of`: env name -> queue."""
    limits = [("queue", queue_of.get(env, env), r) for env, r in settings.queue_rates.items()]
    limits += [("peer", peer, r) for peer, r in settings.peer_rates.items()]
    return sorted(limits)


class QueueGate:
    """One queue's limit, checked before each run: a dict lookup when none is set."""

    __slots__ = ("env_name", "limiter", "queue")

    def __init__(self, limiter: RateLimiter, queue: str, env_name: str) -> None:
        self.limiter = limiter
        self.queue = queue
        self.env_name = env_name

    def per_s(self) -> float | None:
        return self.limiter.live.value.queue_rates.get(self.env_name)

    async def admit(self) -> int | None:
        """None once the permit is ours (after its wait); else ms to wait delayed."""
        return await self.limiter.admit("queue", self.queue, self.per_s())


class RateLimiter:
    """Takes permits of the configured limits; reads the limits per call (hot reload)."""

    def __init__(
        self, redis: Redis, live: Live[EngineSettings], scripts: Scripts | None = None
    ) -> None:
        self.redis = redis
        self.live = live
        self.keys = GlobalKeys(live.value.queue_prefix)
        self.scripts = scripts or Scripts(redis)  # the process's one, when it is handed in

    async def take(self, scope: str, name: str, per_s: float, *, max_wait_ms: int) -> Permit:
        key = self.keys.rate(scope, name)
        wait_ms, booked = await self.scripts.rate_take(key, per_s, BURST, max_wait_ms)
        return Permit(wait_ms, booked)

    async def admit(self, scope: str, name: str, per_s: float | None) -> int | None:
        """Sleep for a booked permit and return None; or the ms a refused caller should wait."""
        if per_s is None:
            return None
        permit = await self.take(scope, name, per_s, max_wait_ms=MAX_WAIT_MS)
        outcome = "refused" if not permit.booked else "waited" if permit.wait_ms > 0 else "allowed"
        telemetry.active().rate_permit(scope, name, outcome)
        if not permit.booked:
            return permit.wait_ms
        if permit.wait_ms > 0:
            await anyio.sleep(permit.wait_ms / 1000)
        return None

    def queue_gate(self, queue: str, env_name: str) -> QueueGate:
        return QueueGate(self, queue, env_name)

    async def peer_gate(self, peer: str) -> None:
        wait_ms = await self.admit("peer", peer, self.live.value.peer_rates.get(peer))
        if wait_ms is not None:
            retry_at = int(time.time() * 1000) + wait_ms
            raise RateLimitedError(
                f"{peer}: shared rate limit ({self.live.value.peer_rates[peer]:g}/s), "
                f"next permit in {wait_ms} ms",
                retry_at_ms=retry_at,
            )


async def read_limits(
    redis: Redis, settings: EngineSettings, queue_of: dict[str, str]
) -> list[RateLimitState]:
    """Every configured limit with the counters its hash holds (one round trip)."""
    limits = configured(settings, queue_of)
    if not limits:
        return []
    keys = GlobalKeys(settings.queue_prefix)
    pipe: Any = redis.pipeline(transaction=False)  # queued calls are not awaitables
    for scope, name, _ in limits:
        pipe.hmget(keys.rate(scope, name), "allowed", "waited", "refused")
    replies = await pipe.execute()
    return [
        RateLimitState(
            scope=scope,
            name=name,
            per_s=per_s,
            allowed=int(row[0] or 0),
            waited=int(row[1] or 0),
            refused=int(row[2] or 0),
        )
        for (scope, name, per_s), row in zip(limits, replies, strict=True)
    ]
