"""Admin endpoints: status codes, bodies and their effect in Redis."""

from __future__ import annotations

import json
import time

from tests.support.admin_http import ADMIN, admin_client, ops_settings
from tests.support.cli_runner import cli, seed_dead
from tests.support.engine_state import pk, queue_state
from tests.support.wait import wait_until

from tgworkers.engine.client import EnqueueRequest
from tgworkers.engine.wire.envelope import from_fields


async def test_queues_answers_the_stats_document_equal_to_stats_json(
    redis, redis_url, registry, client
):
    await client.enqueue_many(
        [EnqueueRequest(name="test.work", payload={"n": i}) for i in range(4)]
    )
    await client.enqueue("test.work", {"n": 9}, delay_s=60)
    await seed_dead(redis, 2)
    async with admin_client(ops_settings(redis_url), registry) as http:
        r = await http.get("/admin/v1/queues", headers=ADMIN)
        cli_doc = json.loads((await cli(redis_url, "stats", "--json")).out)
    http_doc = r.json()
    assert r.status_code == 200
    assert abs(http_doc.pop("at") - cli_doc.pop("at")) < 30_000
    for doc in (http_doc, cli_doc):
        for q in doc["queues"]:
            q.pop("oldestReadyAgeMs")  # ages with the clock between the two reads
    assert http_doc == cli_doc
    work = next(q for q in http_doc["queues"] if q["name"] == "test.work")
    assert (work["ready"], work["delayed"], work["dlq"]) == (4, 1, 2)


async def test_pause_resume_and_drain_answer_the_new_state(redis, redis_url, registry, client):
    await client.enqueue_many(
        [EnqueueRequest(name="test.work", payload={"n": i}) for i in range(3)]
    )
    await client.enqueue("test.work", {"n": 9}, delay_s=60)
    async with admin_client(ops_settings(redis_url), registry) as http:
        paused = await http.post("/admin/v1/queues/test.work/pause", headers=ADMIN)
        assert await redis.hget("{tgw}:control", "test.work") == b"paused"
        resumed = await http.post("/admin/v1/queues/test.work/resume", headers=ADMIN)
        ready_only = await http.post("/admin/v1/queues/test.work/drain", headers=ADMIN)
        both = await http.post(
            "/admin/v1/queues/test.work/drain", json={"delayed": True}, headers=ADMIN
        )
        unknown = await http.post("/admin/v1/queues/nope/pause", headers=ADMIN)
    assert paused.json() == {"queue": "test.work", "paused": True, "pausedBy": ["operator"]}
    assert resumed.json() == {"queue": "test.work", "paused": False, "pausedBy": []}
    assert ready_only.json() == {"queue": "test.work", "removedReady": 3, "removedDelayed": 0}
    assert both.json() == {"queue": "test.work", "removedReady": 0, "removedDelayed": 1}
    assert unknown.status_code == 404 and "unknown queue 'nope'" in unknown.json()["error"]
    assert await redis.hget("{tgw}:control", "test.work") is None


async def test_a_pause_the_configuration_holds_is_shown_as_such_and_resume_says_409(
    redis, redis_url, registry
):
    settings = ops_settings(redis_url, PAUSED_QUEUES="test.work")
    async with admin_client(settings, registry) as http:
        before = await http.get("/admin/v1/queues", headers=ADMIN)
        refused = await http.post("/admin/v1/queues/test.work/resume", headers=ADMIN)
        paused = await http.post("/admin/v1/queues/test.work/pause", headers=ADMIN)
        both = await http.get("/admin/v1/queues", headers=ADMIN)
        still = await http.post("/admin/v1/queues/test.work/resume", headers=ADMIN)
    work = next(q for q in before.json()["queues"] if q["name"] == "test.work")
    assert (work["paused"], work["pausedBy"]) == (True, ["configuration"])
    assert refused.status_code == 409 and "PAUSED_QUEUES" in refused.json()["error"]
    assert paused.json() == {"queue": "test.work", "paused": True,
                             "pausedBy": ["operator", "configuration"]}  # fmt: skip
    work = next(q for q in both.json()["queues"] if q["name"] == "test.work")
    assert work["pausedBy"] == ["operator", "configuration"]
    assert still.status_code == 409
    assert await redis.hget("{tgw}:control", "test.work") == b"paused"  # nothing changed


async def test_enqueue_answers_201_then_200_and_422_for_a_bad_payload(redis, redis_url, registry):
    body = {"payload": {"n": 1}, "id": "ext-1"}
    async with admin_client(ops_settings(redis_url), registry) as http:
        created = await http.post("/admin/v1/jobs/test.work", json=body, headers=ADMIN)
        existed = await http.post("/admin/v1/jobs/test.work", json=body, headers=ADMIN)
        later = await http.post(
            "/admin/v1/jobs/test.work", json={"payload": {"n": 2}, "runAt": 4102444800000},
            headers=ADMIN,
        )  # fmt: skip
        bad = await http.post(
            "/admin/v1/jobs/test.work", json={"payload": {"n": "x"}}, headers=ADMIN
        )
        no_payload = await http.post("/admin/v1/jobs/test.work", json={}, headers=ADMIN)
        unknown = await http.post("/admin/v1/jobs/nope", json={"payload": {}}, headers=ADMIN)
    assert created.status_code == 201
    assert created.json() == {"id": "ext-1", "queue": "test.work", "runAt": created.json()["runAt"],
                              "created": True}  # fmt: skip
    assert existed.status_code == 200 and existed.json()["created"] is False
    assert later.status_code == 201 and later.json()["runAt"] == 4102444800000
    assert bad.status_code == 422 and "invalid payload" in bad.json()["error"]
    assert no_payload.status_code == 422 and unknown.status_code == 404
    state = await queue_state(redis)
    assert (state["ready"], state["delayed"]) == (1, 1)


async def test_a_duplicate_enqueue_answers_the_existing_jobs_due_time(redis, redis_url, registry):
    later = 4102444800000
    async with admin_client(ops_settings(redis_url), registry) as http:
        first = await http.post(
            "/admin/v1/jobs/test.work", json={"payload": {"n": 1}, "id": "d-1", "runAt": later},
            headers=ADMIN,
        )  # fmt: skip
        again = await http.post(
            "/admin/v1/jobs/test.work", json={"payload": {"n": 1}, "id": "d-1"}, headers=ADMIN
        )
        now_job = await http.post(
            "/admin/v1/jobs/test.work", json={"payload": {"n": 2}, "id": "d-2"}, headers=ADMIN
        )
        asked_later = await http.post(
            "/admin/v1/jobs/test.work", json={"payload": {"n": 2}, "id": "d-2", "runAt": later},
            headers=ADMIN,
        )  # fmt: skip
    assert first.json()["runAt"] == later
    assert again.status_code == 200 and again.json()["created"] is False
    assert again.json()["runAt"] == later  # not "now", which was asked for
    assert asked_later.json()["created"] is False
    assert abs(asked_later.json()["runAt"] - now_job.json()["runAt"]) < 5_000  # not `later`


async def test_at_maxmemory_drop_and_drain_work_and_are_audited_and_a_refusal_is_503(
    redis, redis_url, registry, client
):
    await seed_dead(redis, 3)
    await client.enqueue("test.work", {"n": 1})
    async with admin_client(ops_settings(redis_url), registry) as http:
        await redis.config_set("maxmemory", 1)  # noeviction: every write that adds is refused
        try:
            dropped = await http.post(
                "/admin/v1/dlq/test.work/drop", json={"all": True}, headers=ADMIN
            )
            drained = await http.post("/admin/v1/queues/test.work/drain", headers=ADMIN)
            paused = await http.post("/admin/v1/queues/test.work/pause", headers=ADMIN)
        finally:
            await redis.config_set("maxmemory", 0)
        audit = (await http.get("/admin/v1/audit", headers=ADMIN)).json()["items"]
    assert dropped.status_code == 200 and dropped.json()["dropped"] == 3
    assert drained.status_code == 200 and drained.json()["removedReady"] == 1
    assert paused.status_code == 503 and "maxmemory" in paused.json()["error"]
    assert [e["action"] for e in audit] == ["drain", "dlq.drop"]  # newest first, no pause
    assert await redis.hget("{tgw}:control", "test.work") is None


async def test_a_job_dead_lettered_for_an_invalid_payload_counts_as_failed_with_history(
    redis, redis_url, registry, worker_factory
):
    settings = ops_settings(redis_url)
    await redis.xadd(pk().ready, {"id": "bad-1", "name": "test.work", "payload": '{"n": "x"}'})
    async with (
        worker_factory(settings, registry, "test.work"),
        admin_client(settings, registry) as http,
    ):
        await wait_until(lambda: redis.xlen(pk().dlq), timeout_s=5, what="dead-lettered")
        stats = (await http.get("/admin/v1/queues", headers=ADMIN)).json()
        exported = await http.get("/admin/v1/dlq/test.work/export", headers=ADMIN)
    work = next(q for q in stats["queues"] if q["name"] == "test.work")
    assert (work["dlq"], work["failed"]) == (1, 1)
    (line,) = [json.loads(x) for x in exported.text.splitlines()]
    (entry,) = line["errors"]
    assert entry["kind"] == "invalid" and "invalid payload" in entry["message"]
    assert entry["attempt"] == line["attempts"]


async def test_a_requeued_job_runs_as_its_next_attempt_unless_attempts_are_reset(
    redis, redis_url, registry
):
    await seed_dead(redis, 2)  # both died at attempt 3
    async with admin_client(ops_settings(redis_url), registry) as http:
        kept = await http.post(
            "/admin/v1/dlq/test.work/requeue", json={"ids": ["dead-0"]}, headers=ADMIN
        )
        reset = await http.post(
            "/admin/v1/dlq/test.work/requeue", json={"ids": ["dead-1"], "resetAttempts": True},
            headers=ADMIN,
        )  # fmt: skip
    assert (kept.json()["resetAttempts"], reset.json()["resetAttempts"]) == (False, True)
    ready = {env.id: env for env in
             [from_fields(f) for _, f in await redis.xrange(pk().ready)]}  # fmt: skip
    assert (ready["dead-0"].attempt, ready["dead-1"].attempt) == (4, 1)
    note = ready["dead-0"].history[-1]
    assert (note.kind, note.attempt) == ("replayed", 3) and "attempt 4" in note.message


async def test_dlq_list_requeue_keeping_ids_drop_and_export(redis, redis_url, registry):
    await seed_dead(redis, 4)
    async with admin_client(ops_settings(redis_url), registry) as http:
        listed = await http.get("/admin/v1/dlq/test.work?limit=2", headers=ADMIN)
        exported = await http.get("/admin/v1/dlq/test.work/export", headers=ADMIN)
        requeued = await http.post(
            "/admin/v1/dlq/test.work/requeue", json={"ids": ["dead-1", "dead-3"]}, headers=ADMIN
        )
        neither = await http.post("/admin/v1/dlq/test.work/drop", json={}, headers=ADMIN)
        dropped = await http.post("/admin/v1/dlq/test.work/drop", json={"all": True}, headers=ADMIN)
        missing = await http.get("/admin/v1/dlq/nope", headers=ADMIN)
    assert listed.json()["total"] == 4 and [i["id"] for i in listed.json()["items"]] == [
        "dead-0", "dead-1",
    ]  # fmt: skip
    assert exported.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(x) for x in exported.text.splitlines()]
    assert [x["id"] for x in lines] == ["dead-0", "dead-1", "dead-2", "dead-3"] and lines[0][
        "errors"
    ]
    assert requeued.json()["requeued"] == 2 and requeued.json()["ids"] == ["dead-1", "dead-3"]
    entries = await redis.xrange(pk().ready)
    assert sorted(f[b"id"] for _, f in entries) == [b"dead-1", b"dead-3"]
    assert neither.status_code == 422
    assert dropped.json() == {"queue": "test.work", "dropped": 2}
    assert missing.status_code == 404
    assert (await queue_state(redis))["dlq"] == 0


async def test_schedules_and_the_console_show_the_ledger_escaped(redis, redis_url, registry):
    record = {"name": "test.tick", "expression": "1", "job": "test.tick",
              "nextAt": 1700000001000, "lastAt": 1700000000000,
              "lastOutcome": "<skipped>", "lastJobId": None}  # fmt: skip
    await redis.hset("{tgw}:schedules", "test.tick", json.dumps(record))
    async with admin_client(ops_settings(redis_url), registry) as http:
        schedules = await http.get("/admin/v1/schedules", headers=ADMIN)
        page = await http.get("/ui/schedules", headers=ADMIN)
        overview = await http.get("/ui/", headers=ADMIN)
    (item,) = schedules.json()["schedules"]
    assert (item["name"], item["lastAt"], item["lastOutcome"]) == (
        "test.tick",
        1700000000000,
        "<skipped>",
    )
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "&lt;skipped&gt;" in page.text and "<skipped>" not in page.text
    assert "test.work" in overview.text and 'hx-trigger="every 2s"' in overview.text


async def test_metrics_are_open_by_default_and_need_the_token_when_set(redis_url, registry):
    async with admin_client(ops_settings(redis_url), registry) as http:
        open_ = await http.get("/metrics")
    assert open_.status_code == 200 and open_.headers["content-type"].startswith("text/plain")
    # the series themselves: tests/integration/telemetry/test_telemetry_metrics_endpoint.py
    settings = ops_settings(redis_url, METRICS_TOKEN="metrics-token-xyz")  # noqa: S106 - a test value
    async with admin_client(settings, registry) as http:
        refused = await http.get("/metrics")
        allowed = await http.get("/metrics", headers={"Authorization": "Bearer metrics-token-xyz"})
    assert (refused.status_code, allowed.status_code) == (401, 200)


async def test_redis_down_answers_503(registry):
    settings = ops_settings("redis://127.0.0.1:1/0")
    async with admin_client(settings, registry) as http:
        r = await http.get("/admin/v1/queues", headers=ADMIN)
        enqueue = await http.post("/admin/v1/jobs/test.work", json={"payload": {}}, headers=ADMIN)
    assert (r.status_code, enqueue.status_code) == (503, 503)
    assert r.json() == {"error": "redis unavailable"}


async def test_rates_per_minute_come_from_the_newest_sample_a_minute_old(
    redis, redis_url, registry
):
    now = int(time.time() * 1000)
    old = now - 60_000
    await redis.zadd(
        "{tgw}:samples:test.work", {f"{old}:100:10": old, f"{now - 90_000}:0:0": now - 90_000}
    )
    await redis.hset(pk().stats, mapping={"processed": 220, "failed": 40, "retried": 5})
    async with admin_client(ops_settings(redis_url), registry) as http:
        doc = (await http.get("/admin/v1/queues", headers=ADMIN)).json()
    work = next(q for q in doc["queues"] if q["name"] == "test.work")
    assert (work["processed"], work["failed"], work["retried"]) == (220, 40, 5)
    assert 115 <= work["ratePerMin"]["processed"] <= 120  # 120 in the last ~60 s
    assert 29 <= work["ratePerMin"]["failed"] <= 30
    samples = await redis.zrange("{tgw}:samples:test.work", 0, -1)
    assert len(samples) == 3  # the read recorded a fresh sample
