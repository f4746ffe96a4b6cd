"""Issue 26's controls from the CLI: rate limits in `stats`, single-job actions."""

from __future__ import annotations

import json

from tests.conftest import running_worker
from tests.support.cli_runner import cli
from tests.support.wait import wait_until

from tgworkers.engine.client import Client
from tgworkers.engine.layout import Layout
from tgworkers.engine.ops.audit import AuditLog
from tgworkers.engine.ops.dlq import DeadLetters


async def test_stats_shows_each_shared_rate_limit(redis_url):
    env = {"RATE_QUEUE_TEST_WORK_PER_S": "25"}
    doc = await cli(redis_url, "stats", "--json", env=env)
    text = await cli(redis_url, "stats", env={**env, "COLUMNS": "200"})
    assert (doc.rc, text.rc) == (0, 0), doc.err + text.err
    assert json.loads(doc.out)["limits"] == [
        {"scope": "queue", "name": "test.work", "perS": 25.0, "allowed": 0, "waited": 0,
         "refused": 0},
    ]  # fmt: skip
    assert "shared rate limits" in text.out and "test.work" in text.out


async def test_a_rate_limit_naming_no_peer_stops_the_command_with_exit_2(redis_url):
    result = await cli(redis_url, "stats", env={"RATE_PLAYHUB2_PER_S": "5"})
    assert result.rc == 2
    assert result.err_lines == [result.err_lines[0]]
    assert result.err_lines[0].endswith(
        "RATE_PLAYHUB2_PER_S: no peer PLAYHUB2; known: "
        "PAYHUB, PLAYHUB, CAMPAIGNS, ESCROW, DISCOVERY, PRICE"
    )


async def test_job_show_delete_and_run_now_from_the_cli(redis, redis_url, settings, registry):
    client = Client(redis, registry, settings)
    ready = await client.enqueue("test.work", {"n": 1})
    later = await client.enqueue("test.work", {"n": 2}, delay_s=3600)
    shown = await cli(redis_url, "job", "show", "test.work", ready.id)
    unconfirmed = await cli(redis_url, "job", "delete", "test.work", ready.id)
    deleted = await cli(redis_url, "job", "delete", "test.work", ready.id, "--yes", "--json")
    now = await cli(redis_url, "job", "run-now", "test.work", later.id)
    wrong = await cli(redis_url, "job", "run-now", "test.work", later.id)
    assert shown.rc == 0 and json.loads(shown.out)["state"] == "ready"
    assert unconfirmed.rc == 2 and "--yes" in unconfirmed.err
    assert deleted.rc == 0 and json.loads(deleted.out)["state"] == "deleted"
    assert now.rc == 0 and now.out.strip() == f"{later.id}: run-now done, now ready"
    assert wrong.rc == 2 and wrong.err_lines == [f"tgworkers: {later.id} is not delayed "
                                                 "(ready or running)"]  # fmt: skip
    audit = await AuditLog(redis, "{tgw}:audit").page(limit=10)
    assert [(e.action, e.via) for e in audit.items] == [("job.run_now", "cli"),
                                                        ("job.delete", "cli")]  # fmt: skip


async def test_job_cancel_from_the_cli_dead_letters_the_running_job(
    redis, redis_url, settings, registry
):
    job = await Client(redis, registry, settings).enqueue("test.work", {"n": 1, "sleep_ms": 60_000})
    async with running_worker(settings, registry, "test.work"):
        await wait_until(lambda: _running(redis, job.id), what="the job running")
        result = await cli(redis_url, "job", "cancel", "test.work", job.id, "--json")
    assert result.rc == 0, result.err
    doc = json.loads(result.out)
    assert doc["state"] == "dead" and doc["by"].startswith("cli:")
    dead = await DeadLetters(redis, registry, Layout(settings)).find("test.work", job.id)
    assert dead is not None and dead.reason == f"cancelled by {doc['by']}"


async def _running(redis, job_id: str) -> bool:
    state = await redis.hget("{tgw:test.work:0}:jobs", job_id)
    if not state:
        return False
    entry = state[2:].decode()
    return bool(await redis.xpending_range("{tgw:test.work:0}:ready", "tgworkers", entry, entry, 1))


async def test_enqueue_with_expires_at_writes_the_deadline(redis, redis_url):
    made = await cli(redis_url, "enqueue", "test.work", '{"n": 1}', "--id", "dl-1",
                     "--delay", "60", "--expires-at", "2999-01-01T00:00:00Z")  # fmt: skip
    bad = await cli(redis_url, "enqueue", "test.work", '{"n": 1}', "--expires-at", "soon")
    shown = await cli(redis_url, "job", "show", "test.work", "dl-1")
    assert made.rc == 0, made.err
    assert bad.rc == 2 and "--expires-at: expected an ISO 8601 time or Unix ms" in bad.err
    assert json.loads(shown.out)["expires_ms"] == 32472144000000


async def test_schedule_pause_run_now_and_resume_from_the_cli(redis_url):
    paused = await cli(redis_url, "schedule", "pause", "test.tick")
    listed = await cli(redis_url, "schedules", "--json")
    now = await cli(redis_url, "schedule", "run-now", "test.tick", "--json")
    resumed = await cli(redis_url, "schedule", "resume", "test.tick")
    unknown = await cli(redis_url, "schedule", "pause", "nope")
    assert (paused.rc, paused.out.strip()) == (0, "schedule test.tick paused")
    (item,) = json.loads(listed.out)["schedules"]
    assert item["paused"] and item["pausedBy"].startswith("cli:")
    assert json.loads(now.out)["jobId"].startswith("cron:test.tick:now:")
    assert (resumed.rc, resumed.out.strip()) == (0, "schedule test.tick resumed")
    assert unknown.rc == 2 and unknown.err_lines == [
        "tgworkers: no schedule 'nope'; known: test.tick"
    ]


async def test_finished_finds_a_job_by_id_prefix(redis, redis_url, settings, registry):
    await Client(redis, registry, settings).enqueue("test.unique", {"n": 7, "fail_times": 1})
    async with running_worker(settings, registry, "test.work"):
        await wait_until(lambda: redis.zrangebylex("{tgw:test.work:0}:finished:ids", "-", "+"),
                         timeout_s=10, what="a finish record")  # fmt: skip
    found = await cli(redis_url, "finished", "test.unique:7", "--json")
    text = await cli(redis_url, "finished", "test.unique:", env={"COLUMNS": "200"})
    none = await cli(redis_url, "finished", "cfb.settle:b_nope")
    assert found.rc == 0, found.err
    (item,) = json.loads(found.out)["items"]
    assert (item["id"], item["attempt"]) == ("test.unique:7", 2)
    assert "test.unique:7" in text.out
    assert none.rc == 0 and "no job finished" in none.out


async def test_dlq_list_filters_by_id_prefix_name_and_error(redis, redis_url):
    from tests.integration.engine.test_dlq_search import seed

    await seed(redis)
    doc = await cli(redis_url, "dlq", "list", "test.work", "--id-prefix", "cfb.settle:",
                    "--error", "EXPIRED", "--json")  # fmt: skip
    text = await cli(redis_url, "dlq", "list", "test.work", "--name", "test.work",
                     "--sort=-attempts", env={"COLUMNS": "200"})  # fmt: skip
    bad = await cli(redis_url, "dlq", "list", "test.work", "--sort", "nope")
    assert doc.rc == 0, doc.err
    assert [i["id"] for i in json.loads(doc.out)["items"]] == ["cfb.settle:b_3"]
    assert text.rc == 0 and "2 matching in 4 read" in text.out
    assert text.out.index("cfb.settle:b_1") < text.out.index("escrow:e_1")
    assert bad.rc == 2 and "sort: expected one of" in bad.err


async def test_job_requeue_from_the_cli(redis, redis_url):
    from tests.integration.engine.test_dlq_search import seed

    await seed(redis)
    done = await cli(redis_url, "job", "requeue", "test.work", "cfb.settle:b_2", "--json")
    assert done.rc == 0, done.err
    assert json.loads(done.out)["state"] == "ready" and json.loads(done.out)["by"].startswith(
        "cli:"
    )
