"""`dlq list|show|requeue|drop|export` against dead-letter entries in the wire format."""

from __future__ import annotations

import json

from tests.support.cli_runner import cli, seed_dead
from tests.support.engine_state import pk, queue_state


async def test_dlq_list_json_shape_and_limit(redis, redis_url):
    await seed_dead(redis, 3)
    result = await cli(redis_url, "dlq", "list", "test.work", "--limit", "2", "--json")
    assert result.rc == 0, result.err
    doc = json.loads(result.out)
    assert doc["queue"] == "test.work" and doc["total"] == 3 and len(doc["items"]) == 2
    item = doc["items"][0]
    assert set(item) == {"id", "name", "attempts", "reason", "failedAt", "payload"}
    assert item == {"id": "dead-0", "name": "test.work", "attempts": 3,
                    "reason": "permanent: bad thing", "failedAt": 1700000000000,
                    "payload": {"n": 0, "key": ""}}  # fmt: skip


async def test_dlq_show_prints_the_job_with_its_error_history(redis, redis_url):
    await seed_dead(redis, 1)
    result = await cli(redis_url, "dlq", "show", "test.work", "dead-0")
    assert result.rc == 0, result.err
    doc = json.loads(result.out)
    assert doc["id"] == "dead-0" and doc["errors"][0]["message"] == "bad thing"


async def test_dlq_requeue_moves_jobs_back_with_the_same_ids(redis, redis_url):
    await seed_dead(redis, 3)
    result = await cli(redis_url, "dlq", "requeue", "test.work", "dead-0", "dead-2", "nope",
                       "--reset-attempts", "--json")  # fmt: skip
    assert result.rc == 0, result.err
    doc = json.loads(result.out)
    assert doc["requeued"] == 2 and doc["skipped"] == ["nope"]
    entries = await redis.xrange(pk().ready)
    assert sorted(f[b"id"].decode() for _, f in entries) == ["dead-0", "dead-2"]
    assert {f[b"attempt"] for _, f in entries} == {b"1"}
    assert (await queue_state(redis))["dlq"] == 1


async def test_dlq_requeue_all(redis, redis_url):
    await seed_dead(redis, 4)
    result = await cli(redis_url, "dlq", "requeue", "test.work", "--all")
    assert result.rc == 0 and "requeued 4" in result.out
    assert (await queue_state(redis))["ready"] == 4


async def test_dlq_drop_needs_yes_and_deletes(redis, redis_url):
    await seed_dead(redis, 3)
    refused = await cli(redis_url, "dlq", "drop", "test.work", "dead-1")
    assert refused.rc == 2 and (await queue_state(redis))["dlq"] == 3
    one = await cli(redis_url, "dlq", "drop", "test.work", "dead-1", "--yes", "--json")
    assert one.rc == 0 and json.loads(one.out) == {"queue": "test.work", "dropped": 1}
    rest = await cli(redis_url, "dlq", "drop", "test.work", "--all", "--yes")
    assert rest.rc == 0 and "dropped 2" in rest.out
    assert (await queue_state(redis))["dlq"] == 0


async def test_dlq_export_writes_json_lines_with_history_to_stdout_or_a_file(
    redis, redis_url, tmp_path
):
    await seed_dead(redis, 5)
    stdout = await cli(redis_url, "dlq", "export", "test.work")
    assert stdout.rc == 0, stdout.err
    lines = [json.loads(x) for x in stdout.out.splitlines()]
    assert [x["id"] for x in lines] == [f"dead-{i}" for i in range(5)]
    assert lines[0]["errors"][0]["kind"] == "permanent"
    out = tmp_path / "dead.jsonl"
    to_file = await cli(redis_url, "dlq", "export", "test.work", "--out", str(out))
    assert to_file.rc == 0 and to_file.out == ""
    assert out.read_text().splitlines() == stdout.out.splitlines()
