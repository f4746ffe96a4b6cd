"""The console over HTTP (no browser): headers, sessions, login links, roles, bounds."""

from __future__ import annotations

import html
import re

import httpx
import pytest
from tests.support.admin_http import (
    ADMIN,
    ADMIN_TOKEN,
    admin_client,
    make_jwt,
    ops_settings,
)
from tests.support.cli_runner import seed_dead
from tests.support.processes import start_worker
from tests.support.wait import wait_until

from tgworkers import __version__
from tgworkers.devstack.redis import free_port
from tgworkers.engine.wire.envelope import Envelope, to_fields

READONLY = "readonly-token-for-console-tests-0123"
PAGES = ["/ui/", "/ui/queues/test.work", "/ui/queues/test.work?kind=delayed",
         "/ui/queues/test.work?kind=inflight", "/ui/queues/test.work/dlq", "/ui/schedules",
         "/ui/workers", "/ui/audit", "/ui/fragments/queues", "/ui/fragments/charts"]  # fmt: skip


async def _login(http, token=ADMIN_TOKEN):
    r = await http.post("/ui/login", data={"token": token, "next": "/ui/"})
    assert r.status_code == 303, r.text
    page = await http.get("/ui/")
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


async def test_every_page_renders_with_strict_security_headers_and_no_secret(
    redis, redis_url, registry
):
    await seed_dead(redis, 2)
    async with admin_client(ops_settings(redis_url), registry) as http:
        await _login(http)
        answers = [await http.get(p) for p in PAGES]
        job = await http.get("/ui/queues/test.work/jobs/dead-1")
    assert [r.status_code for r in answers] == [200] * len(PAGES)
    assert job.status_code == 200 and "permanent: bad thing" not in job.text  # history shown
    assert "bad thing" in job.text and '"n": 1' in html.unescape(job.text)
    for r in [*answers, job]:
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp and r.headers["referrer-policy"] == "no-referrer"
        assert ADMIN_TOKEN not in r.text
        assert "<script>" not in r.text  # no inline script anywhere


async def test_a_login_link_works_once(redis_url, registry):
    async with admin_client(ops_settings(redis_url), registry) as http:
        token = await http._transport.app.state.sessions.issue_link()  # type: ignore[attr-defined]
        first = await http.get(f"/ui/login/link?t={token}")
        http.cookies.clear()
        again = await http.get(f"/ui/login/link?t={token}")
    assert first.status_code == 303 and "tgw_session=" in first.headers["set-cookie"]
    assert again.status_code == 401 and "already used" in again.text


async def test_failed_sign_ins_are_throttled_even_for_the_right_token(redis, redis_url, registry):
    async with admin_client(ops_settings(redis_url), registry) as http:
        wrong = [
            await http.post("/ui/login", data={"token": f"wrong-token-{i}-" + "x" * 20})
            for i in range(5)
        ]
        right = await http.post("/ui/login", data={"token": ADMIN_TOKEN})
        link = await http.get("/ui/login/link?t=whatever")
    assert [r.status_code for r in wrong] == [401] * 5
    assert right.status_code == 429 and "tgw_session" not in right.headers.get("set-cookie", "")
    assert 0 < int(right.headers["retry-after"]) <= 300 and "Too many" in right.text
    assert link.status_code == 429


async def test_a_session_cookie_is_secure_behind_tls(redis_url, registry):
    async with admin_client(ops_settings(redis_url), registry) as http:
        r = await http.post("/ui/login", data={"token": ADMIN_TOKEN},
                            headers={"x-forwarded-proto": "https"})  # fmt: skip
    cookie = r.headers["set-cookie"].lower()
    assert "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie


async def test_a_forged_cookie_is_refused_without_a_redis_lookup(redis_url, registry):
    async with admin_client(ops_settings(redis_url), registry) as http:
        http.cookies.set("tgw_session", "abc.def")
        r = await http.get("/ui/")
    assert r.status_code == 303 and r.headers["location"].startswith("/ui/login")


async def test_read_only_sessions_see_no_forms_and_cannot_change(redis, redis_url, registry):
    settings = ops_settings(redis_url, ADMIN_READONLY_TOKEN=READONLY)
    async with admin_client(settings, registry) as http:
        csrf = await _login(http, READONLY)
        page = await http.get("/ui/queues/test.work")
        r = await http.post("/ui/queues/test.work/pause", data={"csrf": csrf})
    assert 'data-testid="pause"' not in page.text and "read-only" in page.text
    assert r.status_code == 403 and await redis.hget("{tgw}:control", "test.work") is None


async def test_console_drain_and_dlq_selection_are_audited_as_console(redis, redis_url, registry):
    await seed_dead(redis, 3)
    async with admin_client(ops_settings(redis_url), registry) as http:
        csrf = await _login(http)
        drained = await http.post("/ui/queues/test.work/drain", data={"csrf": csrf})
        dropped = await http.post("/ui/queues/test.work/dlq/selection",
                                  data={"csrf": csrf, "op": "drop", "ids": ["dead-0", "dead-2"]})  # fmt: skip
        none = await http.post("/ui/queues/test.work/dlq/selection",
                               data={"csrf": csrf, "op": "drop"})  # fmt: skip
        audit = (await http.get("/admin/v1/audit", headers=ADMIN)).json()["items"]
    assert drained.status_code == 303 and dropped.status_code == 303
    assert none.status_code == 400 and "select at least one" in none.text
    assert [i["id"] for i in (await _dlq_ids(redis))] == ["dead-1"]
    assert [(e["action"], e["via"]) for e in audit] == [("dlq.drop", "console"),
                                                         ("drain", "console")]  # fmt: skip


async def _dlq_ids(redis):
    rows = await redis.xrange("{tgw:test.work:0}:dlq")
    return [{"id": fields[b"id"].decode()} for _, fields in rows]


@pytest.mark.parametrize("query", ["limit=5000", "limit=x", "kind=nope"])
async def test_console_lists_are_bounded_too(redis_url, registry, query):
    async with admin_client(ops_settings(redis_url), registry) as http:
        await _login(http)
        r = await http.get(f"/ui/queues/test.work?{query}")
    assert r.status_code == 400


async def test_a_poll_after_the_session_ended_sends_htmx_to_the_login_page(redis_url, registry):
    async with admin_client(ops_settings(redis_url), registry) as http:
        r = await http.get("/ui/fragments/queues", headers={"HX-Request": "true"})
    assert r.status_code == 204 and r.headers["hx-redirect"] == "/ui/login"


async def test_the_workers_page_shows_a_running_workers_version_and_processors(redis, redis_url):
    port = free_port()
    proc = start_worker(redis_url, processors="test.work",
                        env={"PORT": str(port), "ADMIN_TOKEN": ADMIN_TOKEN})  # fmt: skip
    try:
        await wait_until(lambda: redis.hlen("{tgw}:workers:info"), timeout_s=20,
                         what="worker info published")  # fmt: skip
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            page = await http.get("/ui/workers", headers=ADMIN)
    finally:
        proc.close()
    row = re.search(r"<tr><td><code>[^<]+</code>.*?</tr>", page.text, re.S).group(0)
    assert __version__ in row and "test.work" in row and "ago" in row


async def test_a_jobs_trace_id_is_linked_when_a_trace_url_template_is_set(
    redis, redis_url, registry
):
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    env = Envelope(id="traced-1", name="test.work", payload=b'{"n": 1}', enqueued_ms=1,
                   traceparent=f"00-{trace}-00f067aa0ba902b7-01")  # fmt: skip
    fields = [*to_fields(env), "reason", "permanent: x", "failed_ms", "1"]
    entry = await redis.xadd(
        "{tgw:test.work:0}:dlq", dict(zip(fields[::2], fields[1::2], strict=True))
    )
    await redis.hset("{tgw:test.work:0}:jobs", "traced-1", b"x:" + entry)
    linked = ops_settings(
        redis_url, TRACE_URL_TEMPLATE="https://grafana.example/explore?trace={traceId}"
    )
    async with admin_client(linked, registry) as http:
        with_link = await http.get("/ui/queues/test.work/jobs/traced-1", headers=ADMIN)
    async with admin_client(ops_settings(redis_url), registry) as http:
        plain = await http.get("/ui/queues/test.work/jobs/traced-1", headers=ADMIN)
    assert f'href="https://grafana.example/explore?trace={trace}"' in with_link.text
    assert trace in plain.text and "grafana" not in plain.text


async def test_a_session_opened_on_one_replica_is_accepted_by_another(redis_url, registry):
    settings = ops_settings(redis_url)
    async with admin_client(settings, registry) as one, admin_client(settings, registry) as two:
        await _login(one)
        two.cookies.update(one.cookies)
        page = await two.get("/ui/")
    assert page.status_code == 200 and "operator" in page.text


async def test_the_login_form_refuses_a_service_jwt(redis_url, registry):
    async with admin_client(ops_settings(redis_url), registry) as http:
        r = await http.post("/ui/login", data={"token": make_jwt()})
    assert r.status_code == 401 and "tgw_session" not in r.headers.get("set-cookie", "")


async def test_the_queue_page_lists_ready_delayed_and_in_flight_jobs_page_by_page(
    redis, redis_url, registry, client
):
    for i in range(5):
        await client.enqueue("test.work", {"n": i}, id=f"ready-{i}")
    await client.enqueue("test.work", {"n": 9}, id="later-1", delay_s=600)
    ready_key = "{tgw:test.work:0}:ready"
    await redis.xgroup_create(ready_key, "tgworkers", id="0", mkstream=True)
    await redis.xreadgroup("tgworkers", "w9", {ready_key: ">"}, count=1)  # ready-0 taken
    async with admin_client(ops_settings(redis_url), registry) as http:
        first = await http.get("/ui/queues/test.work?kind=ready&limit=2", headers=ADMIN)
        cursor = re.search(r"cursor=([^\"&]+)", first.text).group(1)
        second = await http.get(f"/ui/queues/test.work?kind=ready&limit=2&cursor={cursor}",
                                headers=ADMIN)  # fmt: skip
        delayed = await http.get("/ui/queues/test.work?kind=delayed", headers=ADMIN)
        inflight = await http.get("/ui/queues/test.work?kind=inflight", headers=ADMIN)
        found = await http.get("/ui/queues/test.work?q=later-1", headers=ADMIN)
        taken = await http.get("/ui/queues/test.work/jobs/ready-0", headers=ADMIN)
    ids = re.compile(r"/jobs/([\w-]+)\">")
    assert ids.findall(first.text) == ["ready-1", "ready-2"]
    assert ids.findall(second.text) == ["ready-3", "ready-4"]
    assert ids.findall(delayed.text) == ["later-1"]
    assert ids.findall(inflight.text) == ["ready-0"] and "w9" in inflight.text
    assert found.status_code == 303 and found.headers["location"].endswith("/jobs/later-1")
    assert 'job-state">in flight' in taken.text and "w9 · deliveries 1" in taken.text


async def test_odd_job_ids_round_trip_through_links_and_search(redis, redis_url, registry, client):
    await client.enqueue("test.work", {"n": 1}, id="a?b#c d/e", delay_s=600)
    async with admin_client(ops_settings(redis_url), registry) as http:
        listed = await http.get("/ui/queues/test.work?kind=delayed", headers=ADMIN)
        href = re.search(r'href="(/ui/queues/test.work/jobs/[^"]+)"', listed.text).group(1)
        page = await http.get(href, headers=ADMIN)
        found = await http.get("/ui/queues/test.work", params={"q": "a?b#c d/e"}, headers=ADMIN)
        followed = await http.get(found.headers["location"], headers=ADMIN)
    assert page.status_code == 200 and "a?b#c d/e" in page.text
    assert followed.status_code == 200 and 'data-testid="job-state">delayed' in followed.text


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/\\evil.example",
                                    "/ui/..//evil.example"])  # fmt: skip
async def test_after_login_and_actions_the_console_never_redirects_off_site(
    redis_url, registry, target
):
    async with admin_client(ops_settings(redis_url), registry) as http:
        login = await http.post("/ui/login", data={"token": ADMIN_TOKEN, "next": target})
        csrf = re.search(r'name="csrf" value="([^"]+)"', (await http.get("/ui/")).text).group(1)
        paused = await http.post("/ui/queues/test.work/pause", data={"csrf": csrf, "next": target})
    assert login.headers["location"] == "/ui/"
    assert paused.headers["location"] == "/ui/queues/test.work"


async def test_the_console_says_who_holds_a_pause_and_refuses_a_resume_it_cannot_make(
    redis, redis_url, registry
):
    settings = ops_settings(redis_url, PAUSED_QUEUES="test.work")
    async with admin_client(settings, registry) as http:
        csrf = await _login(http)
        page = await http.get("/ui/queues/test.work")
        overview = await http.get("/ui/fragments/queues")
        resumed = await http.post("/ui/queues/test.work/resume", data={"csrf": csrf})
    assert "paused by configuration" in page.text and "PAUSED_QUEUES" in page.text
    assert 'data-testid="resume"' not in page.text
    assert "paused by configuration" in overview.text
    assert resumed.status_code == 409 and "PAUSED_QUEUES" in resumed.text


async def test_an_action_note_is_only_one_of_the_consoles_own_sentences(redis, redis_url, registry):
    await seed_dead(redis, 2)
    async with admin_client(ops_settings(redis_url), registry) as http:
        csrf = await _login(http)
        dropped = await http.post(
            "/ui/queues/test.work/dlq/drop", data={"csrf": csrf, "ids": ["dead-0"]},
            follow_redirects=True,
        )  # fmt: skip
        crafted = await http.get("/ui/?said=Your+session+expired,+sign+in+at+evil.example")
    assert "Dropped 1 dead letter(s) for good." in dropped.text
    assert "evil.example" not in crafted.text and 'data-testid="said"' not in crafted.text
