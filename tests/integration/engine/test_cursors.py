"""Page cursors: one parser (ops/cursor.py) for the DLQ, queue browsing and the audit log.

A cursor that is not a previous page's `next` is refused everywhere with the same message
(the DLQ always did; browsing used to start over at page one, so a client following a
mangled `next` looped without noticing). A good one resumes where its page ended.
"""

from __future__ import annotations

import pytest
from tests.support.admin_http import ADMIN, admin_client, ops_settings
from tests.support.cli_runner import seed_dead

from tgworkers.engine.ops import EngineServices
from tgworkers.engine.ops.cursor import Cursor, parse_cursor, parse_entry_cursor
from tgworkers.errors import InputError

BAD = ["nonsense", "x:1-0", "0:", "0:abc", "0:1-", "-1:1-0", "0:1-0-0", ":1-0"]


@pytest.mark.parametrize("bad", BAD)
def test_a_malformed_cursor_is_refused_naming_what_was_expected(bad: str) -> None:
    with pytest.raises(InputError, match=r"cursor: expected the `next` value"):
        parse_cursor(bad)


def test_positions_are_entry_ids_or_a_delayed_jobs_due_time_and_id() -> None:
    assert parse_cursor(None) is None and parse_cursor("") is None
    assert parse_cursor("3:1700000000000-7") == Cursor(3, "1700000000000-7")
    assert parse_cursor("0:1700000000000|cfb.settle:b_1", position="due") == Cursor(
        0, "1700000000000|cfb.settle:b_1"
    )
    for bad in ("0:1700000000000-7", "0:|id", "0:17|"):  # an entry id is not a due position
        with pytest.raises(InputError):
            parse_cursor(bad, position="due")
    assert parse_entry_cursor("1700000000000-7") == "1700000000000-7"
    assert parse_entry_cursor("1700000000000") == "1700000000000"  # XREVRANGE takes a bare ms
    with pytest.raises(InputError):
        parse_entry_cursor("1700000000000-")


@pytest.fixture
def ops(redis, registry, settings) -> EngineServices:
    return EngineServices.build(redis, registry, settings)


async def test_dlq_and_browsing_refuse_the_same_bad_cursor(ops, client) -> None:
    for i in range(3):
        await client.enqueue("test.work", {"n": i}, id=f"ready-{i}")
    with pytest.raises(InputError, match="cursor"):
        await ops.dlq.list_jobs("test.work", limit=2, cursor="nonsense")
    with pytest.raises(InputError, match="cursor"):
        await ops.browser.page("test.work", "ready", limit=2, cursor="nonsense")
    with pytest.raises(InputError, match="cursor"):
        await ops.browser.page("test.work", "delayed", limit=2, cursor="0:1-0")


async def test_browsing_resumes_after_a_good_cursor(ops, client) -> None:
    for i in range(3):
        await client.enqueue("test.work", {"n": i}, id=f"ready-{i}")
        await client.enqueue("test.work", {"n": i}, id=f"later-{i}", delay_s=600 + i)
    for kind, prefix in (("ready", "ready"), ("delayed", "later")):
        first = await ops.browser.page("test.work", kind, limit=2, cursor=None)
        rest = await ops.browser.page("test.work", kind, limit=2, cursor=first.next)
        assert [j.id for j in first.items + rest.items] == [f"{prefix}-{i}" for i in range(3)]
        assert rest.next is None


@pytest.mark.parametrize(
    "path",
    [
        "/ui/queues/test.work?kind=ready&cursor=nonsense",
        "/ui/queues/test.work?kind=delayed&cursor=0:1-0",
        "/ui/queues/test.work/dlq?cursor=nonsense",
        "/ui/audit?cursor=nonsense",
        "/admin/v1/dlq/test.work?cursor=0:abc",
        "/admin/v1/audit?cursor=1-x",
    ],
)
async def test_http_answers_400_for_a_bad_cursor_on_every_listing(redis, redis_url, registry, path):
    await seed_dead(redis, 1)
    async with admin_client(ops_settings(redis_url), registry) as http:
        r = await http.get(path, headers=ADMIN)
    assert r.status_code == 400, r.text[:300]
    assert "expected the `next` value of a previous page" in r.text
