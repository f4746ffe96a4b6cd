"""`JobType.with_handler` keeps every field of the declaration (the testing harness wraps
handlers with it, so a field added to JobType later cannot be dropped by a copy)."""

from __future__ import annotations

import msgspec

from tgworkers.engine import Done, JobContext, JobType, Outcome, RetryPolicy
from tgworkers.engine.registry import Processor, Registry
from tgworkers.testing.outcomes import recording_registry


class Ping(msgspec.Struct, frozen=True, kw_only=True):
    key: str


async def ping(ctx: JobContext, p: Ping) -> Outcome:
    return Done()


def _check(p: Ping) -> None:
    if not p.key:
        raise ValueError("key is required")


PING = JobType(
    name="t.ping",
    payload=Ping,
    handler=ping,
    job_id=lambda p: f"t.ping:{p.key}",
    partition_key=lambda p: p.key,
    exclusive=True,
    retry=RetryPolicy(max_attempts=3),
    timeout_s=7.0,
    validate=_check,
)


def test_every_field_but_the_handler_is_the_declarations():
    async def other(ctx: JobContext, p: Ping) -> Outcome:
        return Done()

    copy = PING.with_handler(other)
    assert copy.handler is other
    assert PING.handler is ping
    for field in JobType.__slots__:
        if field != "handler":
            assert getattr(copy, field) is getattr(PING, field), field


def test_the_recording_registry_keeps_every_field_of_each_job_type():
    registry = recording_registry(Registry([Processor(name="t", job_types=(PING,))]), print)
    (wrapped,) = registry.processors.values()
    jt = wrapped.job_types[0]
    assert jt.handler is not ping
    for field in JobType.__slots__:
        if field != "handler":
            assert getattr(jt, field) is getattr(PING, field), field
