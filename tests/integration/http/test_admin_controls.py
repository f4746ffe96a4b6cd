"""Issue 26's controls through the admin API: shared rate limits, single-job actions."""

from __future__ import annotations

import time

from tests.conftest import running_worker
from tests.support.admin_http import ADMIN, admin_client, bearer, make_jwt, ops_settings
from tests.support.wait import wait_until

from tgworkers.engine.client import Client
from tgworkers.engine.layout import Layout
from tgworkers.engine.live import Live
from tgworkers.engine.ops.dlq import DeadLetters
from tgworkers.engine.ops.rates import RateLimiter


async def test_limits_lists_each_configured_limit_with_its_counters(redis, redis_url, registry):
    settings = ops_settings(redis_url, RATE_PLAYHUB_PER_S="50", RATE_QUEUE_TEST_WORK_PER_S="0.5")
    limiter = RateLimiter(redis, Live(settings))
    await limiter.take("peer", "playhub", 50.0, max_wait_ms=1000)
    await limiter.take("peer", "playhub", 50.0, max_wait_ms=1000)
    await limiter.take("queue", "test.work", 0.5, max_wait_ms=1000)
    await limiter.take("queue", "test.work", 0.5, max_wait_ms=1000)
    async with admin_client(settings, registry) as http:
        limits = (await http.get("/admin/v1/limits", headers=ADMIN)).json()["limits"]
        queues = (await http.get("/admin/v1/queues", headers=ADMIN)).json()
        anonymous = await http.get("/admin/v1/limits")
    assert limits == [
        {"scope": "peer", "name": "playhub", "perS": 50.0, "allowed": 1, "waited": 1,
         "refused": 0},
        {"scope": "queue", "name": "test.work", "perS": 0.5, "allowed": 1, "waited": 0,
         "refused": 1},
    ]  # fmt: skip
    assert queues["limits"] == limits
    assert anonymous.status_code == 401


async def test_without_limits_the_list_is_empty(redis_url, registry):
    async with admin_client(ops_settings(redis_url), registry) as http:
        answer = await http.get("/admin/v1/limits", headers=ADMIN)
    assert answer.json() == {"limits": []}


async def test_a_running_job_is_cancelled_through_the_api_and_the_audit_names_who(
    redis, redis_url, registry
):
    settings = ops_settings(redis_url)
    job = await Client(redis, registry, settings).enqueue("test.work", {"n": 1, "sleep_ms": 60_000})
    path = f"/admin/v1/queues/test.work/jobs/{job.id}"
    async with (
        running_worker(settings, registry, "test.work") as worker,
        admin_client(settings, registry, worker) as http,
    ):
        await wait_until(lambda: _state(http, path, "in flight"), what="the job running")
        readonly = await http.post(f"{path}/cancel", headers=bearer(make_jwt(scope="read")))
        answer = await http.post(f"{path}/cancel", headers=ADMIN)
        dead = (await http.get(path, headers=ADMIN)).json()
        again = await http.post(f"{path}/cancel", headers=ADMIN)
        audit = (await http.get("/admin/v1/audit", headers=ADMIN)).json()["items"]
    assert readonly.status_code == 403
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"queue": "test.work", "id": job.id, "action": "cancel",
                             "state": "dead", "by": "admin:admin-token"}  # fmt: skip
    assert dead["state"] == "dead" and dead["history"][-1]["kind"] == "cancelled"
    assert again.status_code == 409 and "not running" in again.json()["error"]
    assert (audit[0]["action"], audit[0]["target"]) == ("job.cancel", f"test.work/{job.id}")


async def test_delete_and_run_now_through_the_api(redis, redis_url, registry):
    settings = ops_settings(redis_url)
    client = Client(redis, registry, settings)
    ready = await client.enqueue("test.work", {"n": 1})
    later = await client.enqueue("test.work", {"n": 2}, delay_s=3600)
    async with admin_client(settings, registry) as http:
        wrong = await http.post(f"/admin/v1/queues/test.work/jobs/{ready.id}/run-now",
                                headers=ADMIN)  # fmt: skip
        now = await http.post(f"/admin/v1/queues/test.work/jobs/{later.id}/run-now",
                              headers=ADMIN)  # fmt: skip
        gone = await http.delete(f"/admin/v1/queues/test.work/jobs/{ready.id}", headers=ADMIN)
        missing = await http.delete(f"/admin/v1/queues/test.work/jobs/{ready.id}", headers=ADMIN)
        unknown_queue = await http.delete("/admin/v1/queues/nope/jobs/x", headers=ADMIN)
        actions = [i["action"] for i in
                   (await http.get("/admin/v1/audit", headers=ADMIN)).json()["items"]]  # fmt: skip
    assert wrong.status_code == 409 and "not delayed" in wrong.json()["error"]
    assert (now.status_code, now.json()["state"]) == (200, "ready")
    assert await client.state("test.work", later.id) == "ready"
    assert (gone.status_code, gone.json()["state"]) == (200, "deleted")
    assert missing.status_code == 404 and unknown_queue.status_code == 404
    assert actions == ["job.delete", "job.run_now"]


async def _state(http, path: str, state: str) -> bool:
    answer = await http.get(path, headers=ADMIN)
    return answer.status_code == 200 and answer.json()["state"] == state


async def test_enqueue_takes_expires_at_and_a_job_past_it_is_dead_lettered_expired(
    redis, redis_url, registry
):
    settings = ops_settings(redis_url)
    now = int(time.time() * 1000)
    async with admin_client(settings, registry) as http:
        never = await http.post(
            "/admin/v1/jobs/test.work", headers=ADMIN,
            json={"payload": {"n": 1}, "runAt": now + 60_000, "expiresAt": now + 1_000},
        )  # fmt: skip
        late = await http.post(
            "/admin/v1/jobs/test.work", headers=ADMIN,
            json={"payload": {"n": 2}, "id": "late-1", "expiresAt": now - 1},
        )  # fmt: skip
    assert never.status_code == 422 and "expiresAt is not after runAt" in never.json()["error"]
    assert late.status_code == 201
    dlq = DeadLetters(redis, registry, Layout(settings))
    async with running_worker(settings, registry, "test.work"):
        dead = await wait_until(lambda: dlq.find("test.work", "late-1"), what="expired")
    assert dead.reason == "expired"


async def test_a_schedule_is_paused_resumed_and_run_now_through_the_api(redis_url, registry):
    async with admin_client(ops_settings(redis_url), registry) as http:
        paused = await http.post("/admin/v1/schedules/test.tick/pause", headers=ADMIN)
        listed = (await http.get("/admin/v1/schedules", headers=ADMIN)).json()["schedules"]
        now = await http.post("/admin/v1/schedules/test.tick/run-now", headers=ADMIN)
        resumed = await http.post("/admin/v1/schedules/test.tick/resume", headers=ADMIN)
        unknown = await http.post("/admin/v1/schedules/nope/pause", headers=ADMIN)
        readonly = await http.post("/admin/v1/schedules/test.tick/pause",
                                   headers=bearer(make_jwt(scope="read")))  # fmt: skip
        audit = (await http.get("/admin/v1/audit", headers=ADMIN)).json()["items"]
    assert paused.json() == {"name": "test.tick", "paused": True, "by": "admin:admin-token"}
    (item,) = listed
    assert item["paused"] and item["pausedBy"] == "admin:admin-token"
    assert len(item["nextTicks"]) == 5 and item["nextTicks"][0] == item["nextAt"]
    assert now.json()["created"] and now.json()["jobId"].startswith("cron:test.tick:now:")
    assert resumed.json() == {"name": "test.tick", "paused": False}
    assert unknown.status_code == 404 and readonly.status_code == 403
    assert [(e["action"], e["target"]) for e in audit] == [
        ("schedule.resume", "test.tick"), ("schedule.run_now", "test.tick"),
        ("schedule.pause", "test.tick"),
    ]  # fmt: skip


async def test_finished_jobs_are_found_by_id_prefix_through_the_api(redis, redis_url, registry):
    settings = ops_settings(redis_url)
    client = Client(redis, registry, settings)
    for n in (1, 12, 2):
        await client.enqueue("test.unique", {"n": n})
    async with (
        running_worker(settings, registry, "test.work") as worker,
        admin_client(settings, registry, worker) as http,
    ):
        await wait_until(lambda: _finished(http, "test.unique:", 3), timeout_s=10, what="3")
        page = (await http.get("/admin/v1/finished?prefix=test.unique:1", headers=ADMIN)).json()
        bad = await http.get("/admin/v1/finished?prefix=x&queue=nope", headers=ADMIN)
        too_many = await http.get("/admin/v1/finished?prefix=x&limit=5000", headers=ADMIN)
        bad_sort = await http.get("/admin/v1/finished?prefix=x&sort=nope", headers=ADMIN)
        newest = await http.get("/admin/v1/finished?prefix=test.unique:&sort=-id", headers=ADMIN)
    assert [(i["id"], i["attempt"], i["queue"]) for i in page["items"]] == [
        ("test.unique:1", 1, "test.work"), ("test.unique:12", 1, "test.work"),
    ]  # fmt: skip
    assert set(page["items"][0]) >= {"finishedAt", "deliveries", "durationMs", "consumer"}
    assert bad.status_code == 404 and too_many.status_code == 400 and bad_sort.status_code == 400
    assert [i["id"] for i in newest.json()["items"]] == [
        "test.unique:2", "test.unique:12", "test.unique:1",
    ]  # fmt: skip


async def _finished(http, prefix: str, n: int) -> bool:
    answer = await http.get(f"/admin/v1/finished?prefix={prefix}", headers=ADMIN)
    return len(answer.json()["items"]) >= n


async def test_the_dlq_list_filters_and_sorts_through_the_api(redis, redis_url, registry):
    from tests.integration.engine.test_dlq_search import seed

    await seed(redis)
    async with admin_client(ops_settings(redis_url), registry) as http:
        by_error = await http.get("/admin/v1/dlq/test.work?error=busy", headers=ADMIN)
        by_name = await http.get("/admin/v1/dlq/test.work?name=test.work&sort=-attempts",
                                 headers=ADMIN)  # fmt: skip
        bad_sort = await http.get("/admin/v1/dlq/test.work?sort=payload", headers=ADMIN)
    doc = by_error.json()
    assert [i["id"] for i in doc["items"]] == ["cfb.settle:b_1"]
    assert (doc["total"], doc["scanned"], doc["next"]) == (4, 4, None)
    assert doc["filter"] == {"id_prefix": None, "name": None, "error": "busy"}
    assert [i["id"] for i in by_name.json()["items"]] == ["cfb.settle:b_1", "escrow:e_1"]
    assert bad_sort.status_code == 400 and "sort: expected one of" in bad_sort.json()["error"]


async def test_a_dead_job_is_requeued_by_id_through_the_api(redis, redis_url, registry):
    from tests.integration.engine.test_dlq_search import seed

    await seed(redis)
    async with admin_client(ops_settings(redis_url), registry) as http:
        path = "/admin/v1/queues/test.work/jobs/escrow:e_1/requeue"
        done = await http.post(path, headers=ADMIN, json={"resetAttempts": True})
        again = await http.post(path, headers=ADMIN)
        shown = (await http.get("/admin/v1/queues/test.work/jobs/escrow:e_1", headers=ADMIN)).json()
    assert done.json() == {"queue": "test.work", "id": "escrow:e_1", "action": "requeue",
                           "state": "ready", "by": "admin:admin-token"}  # fmt: skip
    assert again.status_code == 409 and "not dead-lettered" in again.json()["error"]
    assert (shown["state"], shown["attempt"]) == ("ready", 1)
