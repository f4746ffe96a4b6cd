"""Hardened admin surfaces: bounded lists and bodies, roles, JWT lifetime and issuer."""

from __future__ import annotations

import json
import time

import pytest
from tests.support.admin_http import (
    ADMIN,
    admin_client,
    bearer,
    make_jwt,
    ops_settings,
)
from tests.support.cli_runner import seed_dead

from tgworkers.cli.app import registry_for
from tgworkers.engine.runtime.worker import Worker

READONLY_TOKEN = "readonly-token-for-tests-0123456789"  # noqa: S105 - a test value


@pytest.mark.parametrize(
    ("query", "status", "says"),
    [
        ("limit=1001", 400, "at most 1000"),
        ("limit=999999999", 400, "at most 1000"),
        ("limit=abc", 400, "from 1 to 1000"),
        ("limit=-1", 400, "from 1 to 1000"),
        ("limit=0", 400, "at most 1000"),
        ("cursor=nonsense", 400, "cursor"),
    ],
)
async def test_list_limits_out_of_range_are_refused_naming_the_maximum(
    redis, redis_url, registry, query, status, says
):
    await seed_dead(redis, 3)
    async with admin_client(ops_settings(redis_url), registry) as http:
        dlq = await http.get(f"/admin/v1/dlq/test.work?{query}", headers=ADMIN)
        audit = await http.get(f"/admin/v1/audit?{query}", headers=ADMIN)
    assert dlq.status_code == status and says in dlq.json()["error"]
    assert audit.status_code == status


async def test_dlq_pages_follow_the_next_cursor_to_the_end(redis, redis_url, registry):
    await seed_dead(redis, 5)
    seen, cursor = [], ""
    async with admin_client(ops_settings(redis_url), registry) as http:
        for _ in range(5):
            page = (await http.get(f"/admin/v1/dlq/test.work?limit=2&cursor={cursor}",
                                   headers=ADMIN)).json()  # fmt: skip
            seen += [i["id"] for i in page["items"]]
            if page["next"] is None:
                break
            cursor = page["next"]
        full = await http.get("/admin/v1/dlq/test.work?limit=1000", headers=ADMIN)
    assert seen == [f"dead-{i}" for i in range(5)]
    assert full.status_code == 200 and len(full.json()["items"]) == 5


async def test_export_pages_are_bounded_and_resume_from_a_line_cursor(redis, redis_url, registry):
    await seed_dead(redis, 5)
    async with admin_client(ops_settings(redis_url), registry) as http:
        first = await http.get("/admin/v1/dlq/test.work/export?limit=2", headers=ADMIN)
        cursor = json.loads(first.text.splitlines()[-1])["cursor"]
        rest = await http.get(f"/admin/v1/dlq/test.work/export?cursor={cursor}", headers=ADMIN)
        too_many = await http.get("/admin/v1/dlq/test.work/export?limit=1001", headers=ADMIN)
    assert [json.loads(x)["id"] for x in first.text.splitlines()] == ["dead-0", "dead-1"]
    assert [json.loads(x)["id"] for x in rest.text.splitlines()] == ["dead-2", "dead-3", "dead-4"]
    assert too_many.status_code == 400 and "1000" in too_many.json()["error"]


async def test_a_body_over_the_cap_is_refused_413_and_nothing_changes(redis, redis_url, registry):
    await seed_dead(redis, 2)
    huge = b'{"ids": ["' + b"x" * (2 * 1024 * 1024) + b'"]}'
    async with admin_client(ops_settings(redis_url), registry) as http:
        r = await http.post("/admin/v1/dlq/test.work/drop", content=huge,
                            headers={**ADMIN, "content-type": "application/json"})  # fmt: skip
    assert r.status_code == 413 and "at most" in r.json()["error"]
    assert await redis.xlen("{tgw:test.work:0}:dlq") == 2


async def test_a_bad_payload_answers_422_naming_path_problem_and_expected_fields(redis_url, redis):
    registry = registry_for(None)
    settings = ops_settings(redis_url)
    worker = Worker(settings=settings, registry=registry, processors=registry.select("cfb.settle"),
                    consumer="probe-only")  # fmt: skip
    try:
        async with admin_client(settings, registry, worker) as http:
            r = await http.post("/admin/v1/jobs/cfb.settle", json={"payload": {"bet": 1}},
                                headers=ADMIN)  # fmt: skip
    finally:
        await worker.redis.aclose()
        await worker.blocking.aclose()
    body = r.json()
    assert r.status_code == 422
    assert body["expected"] == {"betId": {"type": "str", "required": True}}
    assert "unknown field `bet`" in body["problem"] and body["path"] == "$"
    assert "betId (str, required)" in body["error"]
    assert await redis.dbsize() == 0


async def test_the_readonly_token_reads_but_every_change_is_403(redis, redis_url, registry):
    await seed_dead(redis, 1)
    settings = ops_settings(redis_url, ADMIN_READONLY_TOKEN=READONLY_TOKEN)
    ro = bearer(READONLY_TOKEN)
    async with admin_client(settings, registry) as http:
        reads = [await http.get(p, headers=ro) for p in
                 ("/admin/v1/queues", "/admin/v1/dlq/test.work", "/admin/v1/audit")]  # fmt: skip
        changes = [
            await http.post("/admin/v1/queues/test.work/pause", headers=ro),
            await http.post("/admin/v1/queues/test.work/drain", json={}, headers=ro),
            await http.post("/admin/v1/jobs/test.work", json={"payload": {"n": 1}}, headers=ro),
            await http.post("/admin/v1/dlq/test.work/drop", json={"all": True}, headers=ro),
        ]
    assert [r.status_code for r in reads] == [200, 200, 200]
    assert [r.status_code for r in changes] == [403] * 4
    assert "may only read" in changes[0].json()["error"]
    assert await redis.hget("{tgw}:control", "test.work") is None
    assert await redis.xlen("{tgw:test.work:0}:dlq") == 1


@pytest.mark.parametrize(
    ("claims", "status"),
    [
        ({}, 200),
        ({"lifetime_s": 3600}, 401),  # lives an hour: over the 10-minute cap
        ({"iss": "stranger"}, 401),  # signed by a trusted key, issuer not allowed
        ({"scope": "read"}, 403),
        ({"scope": None}, 403),  # no scope: read-only
    ],
)
async def test_admin_jwts_need_a_short_life_an_allowed_issuer_and_scope_admin(
    redis, redis_url, registry, claims, status
):
    now = int(time.time())  # minted now, not at collection: the suite may run for minutes
    over = dict(claims)
    token = make_jwt(iat=now, exp=now + over.pop("lifetime_s", 60), **over)
    async with admin_client(ops_settings(redis_url), registry) as http:
        r = await http.post("/admin/v1/queues/test.work/pause", headers=bearer(token))
    assert r.status_code == status
    assert (await redis.hget("{tgw}:control", "test.work") is not None) == (status == 200)


async def test_every_change_is_in_the_audit_stream_newest_first(redis, redis_url, registry):
    async with admin_client(ops_settings(redis_url), registry) as http:
        await http.post("/admin/v1/queues/test.work/pause", headers=ADMIN)
        await http.post(
            "/admin/v1/queues/test.work/resume", headers=bearer(make_jwt(sub="ops:ann"))
        )
        page = (await http.get("/admin/v1/audit?limit=1", headers=ADMIN)).json()
        rest = (await http.get(f"/admin/v1/audit?cursor={page['next']}", headers=ADMIN)).json()
    first, second = page["items"][0], rest["items"][0]
    assert (first["action"], first["who"], first["via"]) == ("resume", "ops:ann", "api")
    assert (second["action"], second["who"], second["role"]) == ("pause", "admin-token", "admin")
    assert first["target"] == "test.work" and first["at"] >= second["at"] > 0
    assert rest["next"] is None


async def test_requeue_and_drop_all_walk_more_than_a_page_of_dead_letters(
    redis, redis_url, registry
):
    await seed_dead(redis, 1_200)  # the DLQ is walked 500 at a time while entries leave it
    async with admin_client(ops_settings(redis_url), registry) as http:
        requeued = await http.post("/admin/v1/dlq/test.work/requeue", json={"all": True},
                                   headers=ADMIN)  # fmt: skip
        await seed_dead(redis, 1_100)
        dropped = await http.post("/admin/v1/dlq/test.work/drop", json={"all": True},
                                  headers=ADMIN)  # fmt: skip
    assert requeued.json()["requeued"] == 1_200 and requeued.json()["skipped"] == []
    assert dropped.json()["dropped"] == 1_100
    assert await redis.xlen("{tgw:test.work:0}:dlq") == 0
