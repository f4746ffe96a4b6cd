"""An operator's actions on one job: cancel it while it runs, delete it, run it now.

- **cancel**: a running job's owner is told through one hash every worker polls
  with its pause flags (`GlobalKeys.cancels`, every 200 ms). The worker holding
  the delivery interrupts its handler; the executor dead-letters the job with
  reason `cancelled by <who>` (DeadReason.CANCELLED), through the usual fenced
  settle. A request nobody acts on (the job finished first) is dropped after
  `STALE_MS`.
- **delete**: a ready entry no worker has taken, or a delayed job, by script
  (`lua/job_delete.lua`); one in flight is refused (cancel it), one in the DLQ too.
- **run now**: a delayed job is made due at Redis's now and promoted at once.
- **requeue**: a dead-lettered job back onto its queue, through the DLQ's requeue
  (dlq.py), which also drops a deadline that has passed (it would expire again).
"""

from __future__ import annotations

import time
from typing import Any, Final

import anyio
import msgspec
from redis import exceptions as rex
from redis.asyncio import Redis

from tgworkers.engine.layout import Layout
from tgworkers.engine.ops.dlq import DeadLetters
from tgworkers.engine.registry import Registry
from tgworkers.engine.wire.keys import GROUP, PartitionKeys
from tgworkers.engine.wire.replies import text
from tgworkers.engine.wire.scripts import Scripts
from tgworkers.errors import InputError

STALE_MS: Final = 60_000
"""A cancel request no worker acted on within a minute is dropped (its job had ended)."""
CANCEL_WAIT_S: Final = 3.0
"""How long `cancel` waits to report `dead` rather than `cancelling`."""
PROMOTE_LIMIT: Final = 100

_json = msgspec.json.Encoder()


class JobNotFoundError(InputError):
    """No job with that id in that queue (404)."""


class JobStateError(InputError):
    """The job is not in a state the action applies to (409)."""


class CancelRequest(msgspec.Struct, frozen=True):
    """One field of the cancels hash: who asked, and when (ms)."""

    by: str
    at: int


decode_request = msgspec.json.Decoder(CancelRequest).decode


class JobActionResult(msgspec.Struct, frozen=True, kw_only=True):
    """What an action did: `{"queue", "id", "action", "state"}` (`state`: where it is now)."""

    queue: str
    id: str
    action: str
    state: str
    by: str | None = None


class JobActions:
    """Cancel, delete and run-now of one job by id (see the module docstring)."""

    def __init__(self, redis: Redis, registry: Registry, layout: Layout, scripts: Scripts) -> None:
        self.redis = redis
        self.registry = registry
        self.layout = layout
        self.scripts = scripts
        self.key = layout.globals.cancels

    async def locate(self, queue: str, job_id: str) -> tuple[PartitionKeys, str]:
        """The job's partition and state (`r:<entry>`, `d`, `x:<entry>`)."""
        for pk in self.layout.partitions(self.registry.queue(queue)):
            state: Any = await self.redis.hget(pk.jobs, job_id)
            if state:
                return pk, text(state)
        raise JobNotFoundError(f"no job {job_id!r} in {queue} (finished jobs are not kept)")

    async def delete(self, queue: str, job_id: str) -> JobActionResult:
        pk, _ = await self.locate(queue, job_id)
        where = await self.scripts.job_delete(pk, job_id)
        if where == "missing":
            raise JobNotFoundError(f"no job {job_id!r} in {queue} (it finished meanwhile)")
        if where not in ("ready", "delayed"):
            hint = "cancel it" if where == "inflight" else "drop it from the DLQ"
            raise JobStateError(f"{job_id} is {_WHERE[where]}: {hint} instead")
        return JobActionResult(queue=queue, id=job_id, action="delete", state="deleted")

    async def run_now(self, queue: str, job_id: str) -> JobActionResult:
        pk, state = await self.locate(queue, job_id)
        if state != "d":
            raise JobStateError(f"{job_id} is not delayed ({_state_name(state)})")
        seconds, micros = await self.redis.time()
        now_ms = seconds * 1000 + micros // 1000
        if not await self.redis.zadd(pk.delayed, {job_id: now_ms}, xx=True, ch=True):
            raise JobStateError(f"{job_id} was promoted meanwhile: it is ready")
        await self.scripts.promote_due(pk, limit=PROMOTE_LIMIT)
        return JobActionResult(queue=queue, id=job_id, action="run_now", state="ready")

    async def requeue(
        self, queue: str, job_id: str, *, by: str, reset_attempts: bool = False
    ) -> JobActionResult:
        """A dead-lettered job back onto its queue (the DLQ's requeue, for one id)."""
        _, state = await self.locate(queue, job_id)
        if not state.startswith("x:"):
            raise JobStateError(f"{job_id} is not dead-lettered ({_state_name(state)})")
        dlq = DeadLetters(self.redis, self.registry, self.layout, self.scripts)
        result = await dlq.requeue(queue, [job_id], reset_attempts=reset_attempts, by=by)
        if not result["requeued"]:
            raise JobStateError(f"{job_id} left the DLQ meanwhile")
        return JobActionResult(queue=queue, id=job_id, action="requeue", state="ready", by=by)

    async def cancel(
        self, queue: str, job_id: str, *, by: str, wait_s: float = CANCEL_WAIT_S
    ) -> JobActionResult:
        pk, state = await self.locate(queue, job_id)
        if not (state.startswith("r:") and await self._in_flight(pk, state[2:])):
            raise JobStateError(
                f"{job_id} is not running ({_state_name(state)}): only a running job is "
                "cancelled; delete a ready or delayed one"
            )
        field = f"{queue}/{job_id}"
        await self.redis.hset(self.key, field, _json.encode(CancelRequest(by, _now_ms())))
        with anyio.move_on_after(wait_s):
            # polled: the owner's settle publishes nothing to wait on
            while not text(await self.redis.hget(pk.jobs, job_id) or b"").startswith("x:"):  # noqa: ASYNC110
                await anyio.sleep(0.05)
            return JobActionResult(queue=queue, id=job_id, action="cancel", state="dead", by=by)
        return JobActionResult(queue=queue, id=job_id, action="cancel", state="cancelling", by=by)

    async def _in_flight(self, pk: PartitionKeys, entry: str) -> bool:
        try:
            pending: Any = await self.redis.xpending_range(pk.ready, GROUP, entry, entry, 1)
        except rex.ResponseError:  # no group yet: nothing was ever delivered
            return False
        return bool(pending)


_WHERE: Final = {"inflight": "running (a worker holds it)", "dead": "dead-lettered"}


def _state_name(state: str) -> str:
    if state == "d":
        return "delayed"
    return "dead-lettered" if state.startswith("x:") else "ready or running"


def _now_ms() -> int:
    return int(time.time() * 1000)
