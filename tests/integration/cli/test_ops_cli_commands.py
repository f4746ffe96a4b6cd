"""CLI commands end to end: exit codes, stdout and --json shapes, effect in Redis."""

from __future__ import annotations

import json

import pytest
from tests.support.cli_runner import cli, seed_dead
from tests.support.engine_state import queue_state, runs
from tests.support.wait import wait_until

from tgworkers.engine.client import EnqueueRequest


async def test_enqueue_prints_json_and_a_second_enqueue_of_the_id_is_not_created(redis, redis_url):
    first = await cli(redis_url, "enqueue", "test.work", '{"n": 1}', "--id", "j1", "--json")
    again = await cli(redis_url, "enqueue", "test.work", '{"n": 1}', "--id", "j1", "--json")
    assert (first.rc, again.rc) == (0, 0), first.err + again.err
    doc = json.loads(first.out)
    assert set(doc) == {"id", "queue", "runAt", "created"}
    assert doc["id"] == "j1" and doc["queue"] == "test.work" and doc["created"] is True
    assert json.loads(again.out)["created"] is False
    assert (await queue_state(redis))["ready"] == 1


async def test_enqueue_with_at_or_delay_makes_a_delayed_job_and_plain_output_is_the_id(
    redis, redis_url
):
    at = await cli(redis_url, "enqueue", "test.work", '{"n": 2}', "--at", "2999-01-01T00:00:00Z")
    later = await cli(redis_url, "enqueue", "test.work", '{"n": 3}', "--delay", "60", "--json")
    assert at.rc == 0 and at.out.strip() and "{" not in at.out
    assert json.loads(later.out)["runAt"] > 0
    assert (await queue_state(redis))["delayed"] == 2


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("enqueue", "test.work", '{"n": "x"}'), "invalid payload"),
        (("enqueue", "test.work", "not json"), "invalid payload"),
        (("enqueue", "no.such.job", "{}"), "unknown job type 'no.such.job'"),
        (("enqueue", "test.work", "{}", "--at", "tomorrow"), "--at"),
        (("pause", "no.such.queue"), "unknown queue 'no.such.queue'"),
        (("drain", "test.work"), "--yes"),
        (("dlq", "show", "test.work", "missing"), "no dead-lettered job 'missing'"),
        (("dlq", "requeue", "test.work"), "--all"),
        (("dlq", "drop", "test.work", "--all"), "--yes"),
        (("backfill", "test.work", "--file", "/nonexistent/x.jsonl"), "--file"),
    ],
)
async def test_user_errors_exit_2_with_one_line_naming_the_problem(redis, redis_url, args, needle):
    result = await cli(redis_url, *args)
    assert result.rc == 2
    assert len(result.err_lines) == 1, result.err
    assert needle in result.err and "Traceback" not in result.err
    assert result.out == ""
    assert await redis.dbsize() == 0  # nothing changed


async def test_bad_flag_is_a_usage_error_exit_2_without_traceback(redis_url):
    result = await cli(redis_url, "enqueue", "test.work", "{}", "--delay", "soon")
    assert result.rc == 2 and "--delay" in result.err and "Traceback" not in result.err


async def test_stats_json_counts_ready_delayed_paused_and_dlq(redis, redis_url, client):
    await client.enqueue_many(
        [EnqueueRequest(name="test.work", payload={"n": i}) for i in range(3)]
    )
    await client.enqueue("test.work", {"n": 9}, delay_s=60)
    await seed_dead(redis, 2)
    assert (await cli(redis_url, "pause", "test.work")).rc == 0
    result = await cli(redis_url, "stats", "--json")
    assert result.rc == 0, result.err
    doc = json.loads(result.out)
    assert set(doc) == {"queues", "at"}
    by_name = {q["name"]: q for q in doc["queues"]}
    assert {"test.work", "test.exclusive", "test.poison", "tgworkers.noop"} <= set(by_name)
    q = by_name["test.work"]
    assert set(q) == {
        "name", "ready", "inflight", "delayed", "dlq", "paused", "consumers",
        "oldestReadyAgeMs", "processed", "failed", "retried", "ratePerMin", "pausedBy",
    }  # fmt: skip
    assert (q["ready"], q["inflight"], q["delayed"], q["dlq"], q["paused"]) == (3, 0, 1, 2, True)
    assert q["oldestReadyAgeMs"] >= 0 and q["ratePerMin"] == {"processed": 0, "failed": 0}
    table = await cli(redis_url, "stats")
    assert table.rc == 0 and "test.work" in table.out


async def test_pause_and_resume_flip_the_flag_every_worker_polls(redis, redis_url):
    paused = await cli(redis_url, "pause", "test.work", "--json")
    assert paused.rc == 0 and json.loads(paused.out) == {
        "queue": "test.work", "paused": True, "pausedBy": ["operator"],
    }  # fmt: skip
    assert await redis.hget("{tgw}:control", "test.work") == b"paused"
    resumed = await cli(redis_url, "resume", "test.work")
    assert resumed.rc == 0 and "resumed" in resumed.out
    assert await redis.hget("{tgw}:control", "test.work") is None


async def test_drain_removes_ready_and_delayed_jobs_while_the_in_flight_one_finishes(
    redis, redis_url, client, settings, registry, worker_factory
):
    async with worker_factory(settings, registry, "test.work") as worker:
        worker.runtime("test.work").set_concurrency(1)
        await client.enqueue("test.work", {"n": 0, "sleep_ms": 4000})  # outlives a slow CLI start
        await wait_until(lambda: _inflight(redis), timeout_s=5, what="first job in flight")
        await client.enqueue_many(
            [EnqueueRequest(name="test.work", payload={"n": i}) for i in range(1, 11)]
        )
        await client.enqueue("test.work", {"n": 99}, delay_s=60)
        result = await cli(redis_url, "drain", "test.work", "--delayed", "--yes", "--json")
        assert result.rc == 0, result.err
        assert json.loads(result.out) == {
            "queue": "test.work",
            "removedReady": 10,
            "removedDelayed": 1,
        }
        await wait_until(lambda: _finished(redis), timeout_s=8, what="in-flight job finished")
    assert [r.n for r in await runs(redis)] == [0]


async def _inflight(redis) -> bool:
    return (await queue_state(redis))["pending"] > 0


async def _finished(redis) -> bool:
    s = await queue_state(redis)
    return s["pending"] == 0 and s["ready"] == 0 and len(await runs(redis)) == 1


async def test_jobs_json_lists_each_job_type_with_its_queue_fields_and_policy(redis_url):
    result = await cli(redis_url, "jobs", "--json", env={"MAX_ATTEMPTS_TEST_WORK": "4"})
    assert result.rc == 0, result.err
    jobs = {j["name"]: j for j in json.loads(result.out)["jobs"]}
    schema = jobs["test.slow"].pop("schema")
    work = schema["$defs"][schema["$ref"].rsplit("/", 1)[-1]]
    assert work["properties"]["n"]["type"] == "integer" and "n" in work["properties"]
    assert work["required"] == []
    assert jobs["test.slow"] == {
        "name": "test.slow", "processor": "test.work", "queue": "test.work",
        "fields": {"n": "int", "key": "str | None", "sleep_ms": "int", "fail_times": "int",
                   "cleanup_ms": "int", "mode": "str"},
        "maxAttempts": 4, "timeoutS": 0.3, "partitions": 1, "jobId": None,
        "jobIdFromPayload": False, "partitionKey": None, "partitionKeyFromPayload": False,
    }  # fmt: skip
    # `test.unique:{n}` formats an int: not a template a producer could fill from text
    assert (jobs["test.unique"]["jobId"], jobs["test.unique"]["jobIdFromPayload"]) == (None, True)
    assert jobs["test.exclusive"]["partitions"] == 2
    assert jobs["tgworkers.noop"]["maxAttempts"] == 10


async def test_schedules_json_lists_declared_schedules_with_their_ledger(redis, redis_url):
    # the test app declares one schedule, test.tick ("1" = every second, CRON_TEST_TICK)
    record = {"name": "test.tick", "expression": "1", "job": "test.tick",
              "nextAt": 1700000001000, "lastAt": 1700000000000, "lastOutcome": "skipped: overlap",
              "lastJobId": "cron:test.tick:1700000000000"}  # fmt: skip
    await redis.hset("{tgw}:schedules", "test.tick", json.dumps(record))
    result = await cli(redis_url, "schedules", "--json")
    assert result.rc == 0, result.err
    (item,) = json.loads(result.out)["schedules"]
    assert item["nextAt"] % 1000 == 0 and item["nextAt"] > record["nextAt"]  # computed now
    added = ("nextAt", "nextTicks", "paused", "pausedBy")  # computed now, pause (issue 26)
    assert {k: v for k, v in item.items() if k not in added} == {
        k: v for k, v in record.items() if k != "nextAt"
    }
    await redis.delete("{tgw}:schedules")  # never fired yet: still listed
    fresh = json.loads((await cli(redis_url, "schedules", "--json")).out)["schedules"]
    assert [(s["name"], s["lastAt"], s["lastOutcome"]) for s in fresh] == [
        ("test.tick", None, None)
    ]
    table = await cli(redis_url, "schedules")
    assert "test.tick" in table.out


async def test_commands_read_the_config_document_and_resume_names_paused_queues(
    redis, redis_url, tmp_path
):
    doc = tmp_path / "config.json"
    doc.write_text(json.dumps({"PAUSED_QUEUES": "test.work", "CRON_TEST_TICK": "*/7 * * * *"}))
    env = {"CONFIG_FILE": str(doc)}
    stats = await cli(redis_url, "stats", "--json", env=env)
    schedules = await cli(redis_url, "schedules", "--json", env=env)
    resumed = await cli(redis_url, "resume", "test.work", env=env)
    table = await cli(redis_url, "stats", env=env)
    assert stats.rc == 0, stats.err
    assert "configuration" in next(ln for ln in table.out.splitlines() if "test.work" in ln)
    work = next(q for q in json.loads(stats.out)["queues"] if q["name"] == "test.work")
    assert (work["paused"], work["pausedBy"]) == (True, ["configuration"])
    (tick,) = json.loads(schedules.out)["schedules"]
    assert tick["expression"] == "*/7 * * * *"
    assert resumed.rc == 2 and resumed.err_lines == [resumed.err_lines[0]]
    assert "PAUSED_QUEUES" in resumed.err and "Traceback" not in resumed.err


async def test_an_unreadable_config_document_is_said_once_and_the_environment_used(redis_url):
    stats = await cli(redis_url, "stats", "--json", env={"CONFIG_FILE": "/nonexistent/c.json"})
    assert stats.rc == 0
    assert "config document /nonexistent/c.json: unavailable" in stats.err
