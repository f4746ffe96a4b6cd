"""DLQ search: by id prefix, job name and error text, sorted, with a bounded scan."""

from __future__ import annotations

import pytest
from tests.support.engine_state import pk

from tgworkers.engine.layout import Layout
from tgworkers.engine.ops.dlq import DeadLetters
from tgworkers.engine.ops.dlq_search import DlqFilter, search
from tgworkers.engine.wire.envelope import Envelope, HistoryEntry, to_fields
from tgworkers.errors import InputError

DEAD = [  # id, job name, attempts, reason, history message
    ("cfb.settle:b_1", "test.work", 3, "attempts exhausted (3/3): boom", "PlayHub 503 busy"),
    ("cfb.settle:b_2", "test.slow", 1, "permanent: bet_not_found", "bet_not_found"),
    ("escrow:e_1", "test.work", 2, "cancelled by admin:ops", "cancelled by admin:ops"),
    ("cfb.settle:b_3", "test.unique", 5, "expired", "expired at 2026-01-01T00:00:00Z"),
]


async def seed(redis) -> None:
    for i, (job_id, name, attempts, reason, message) in enumerate(DEAD):
        env = Envelope(
            id=job_id, name=name, payload=b"{}", enqueued_ms=1, attempt=attempts,
            history=(HistoryEntry(attempt=attempts, at_ms=1, kind="error", message=message),),
        )  # fmt: skip
        fields = [*to_fields(env), "reason", reason, "failed_ms", str(1_700_000_000_000 + i)]
        entry = await redis.xadd(pk().dlq, dict(zip(fields[::2], fields[1::2], strict=True)))
        await redis.hset(pk().jobs, job_id, b"x:" + entry)


@pytest.fixture
async def dlq(redis, registry, settings) -> DeadLetters:
    await seed(redis)
    return DeadLetters(redis, registry, Layout(settings))


async def ids(dlq, flt: DlqFilter, **kw) -> list[str]:
    doc = await search(dlq, "test.work", flt, limit=kw.pop("limit", 100), **kw)
    return [i["id"] for i in doc["items"]]


async def test_filters_by_id_prefix_name_and_error_text(dlq):
    assert await ids(dlq, DlqFilter(id_prefix="cfb.settle:")) == [
        "cfb.settle:b_1", "cfb.settle:b_2", "cfb.settle:b_3",
    ]  # fmt: skip
    assert await ids(dlq, DlqFilter(name="test.work")) == ["cfb.settle:b_1", "escrow:e_1"]
    assert await ids(dlq, DlqFilter(error="503 BUSY")) == ["cfb.settle:b_1"]  # history, any case
    assert await ids(dlq, DlqFilter(error="not_found", id_prefix="cfb.")) == ["cfb.settle:b_2"]
    assert await ids(dlq, DlqFilter(id_prefix="nope")) == []


async def test_sorts_the_page_and_refuses_an_unknown_column(dlq):
    every = DlqFilter()
    assert await ids(dlq, every, sort="-attempts") == [
        "cfb.settle:b_3", "cfb.settle:b_1", "escrow:e_1", "cfb.settle:b_2",
    ]  # fmt: skip
    assert (await ids(dlq, every, sort="-failedAt"))[0] == "cfb.settle:b_3"
    assert await ids(dlq, every, sort="reason") == [
        "cfb.settle:b_1", "escrow:e_1", "cfb.settle:b_3", "cfb.settle:b_2",
    ]  # fmt: skip
    with pytest.raises(InputError, match="sort: expected one of failedAt"):
        await ids(dlq, every, sort="payload")


async def test_a_bounded_scan_resumes_from_its_cursor(dlq):
    flt = DlqFilter(name="test.work")
    first = await search(dlq, "test.work", flt, limit=100, scan_max=2)
    assert ([i["id"] for i in first["items"]], first["scanned"]) == (["cfb.settle:b_1"], 2)
    assert first["next"] is not None
    rest = await search(dlq, "test.work", flt, limit=100, cursor=first["next"], scan_max=2)
    assert ([i["id"] for i in rest["items"]], rest["next"]) == (["escrow:e_1"], None)
    one = await search(dlq, "test.work", DlqFilter(id_prefix="cfb."), limit=1)
    assert [i["id"] for i in one["items"]] == ["cfb.settle:b_1"] and one["next"] is not None
