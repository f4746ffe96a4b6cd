"""The console in a real browser: sign-in, live overview, pause, DLQ requeue, roles, CSRF, logout."""

from __future__ import annotations

import json
import time

import anyio
from playwright.async_api import expect

from tests.browser.conftest import ADMIN_TOKEN
from tests.support.platform_jobs import now_ms
from tests.support.wait import wait_until
from tgworkers.engine.layout import Layout
from tgworkers.engine.ops.history import MINUTE_MS, add_bucket

QUEUE = "cfb.settle"
CONTROL = "{tgw}:control"


async def test_login_refuses_a_bad_token_and_accepts_the_admin_token(open_console):
    async with open_console() as console:
        page = console.page
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        await page.goto(f"{console.base}/")
        await expect(page).to_have_url(f"{console.base}/ui/login?next=/ui/")
        await console.shot("login")
        await page.fill("#token", "not-the-token-at-all-but-long")
        await page.click("button[type=submit]")
        await expect(page.get_by_test_id("login-error")).to_be_visible()
        assert await page.context.cookies() == []
        await page.fill("#token", ADMIN_TOKEN)
        await page.click("button[type=submit]")
        await expect(page.get_by_role("heading", name="Queues")).to_be_visible()
        await expect(page.get_by_test_id("role")).to_contain_text("operator")
        (cookie,) = await page.context.cookies()
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert (
            await page.evaluate("typeof window.htmx") == "object"
        )  # vendored script ran under CSP
        assert [e for e in errors if "401" not in e] == []  # no CSP violation, no failed script


async def test_overview_shows_a_queue_filling_and_draining(open_console):
    async with open_console() as console:
        jobs = console.jobs
        for i in range(12):
            jobs.fake.state.add_bet(f"fill_{i}", t_end_ms=now_ms() - 1000)
        await jobs.worker.control.set_paused(QUEUE, paused=True)
        await wait_until(lambda: all(rt.paused for rt in jobs.worker.runtimes), what="paused")
        for i in range(12):
            await jobs.enqueue(QUEUE, {"betId": f"fill_{i}"})
        page = await console.sign_in_with_link()
        row = page.locator(f'tr[data-queue="{QUEUE}"]')
        await expect(row.locator('[data-col="ready"]')).to_have_text("12", timeout=10_000)
        await expect(row.locator('[data-col="paused"]')).to_have_text("paused by operator")
        await console.shot("overview-filled")
        await jobs.worker.control.set_paused(QUEUE, paused=False)
        await expect(row.locator('[data-col="ready"]')).to_have_text("0", timeout=15_000)
        await expect(row.locator('[data-col="paused"]')).to_have_text("running")
        assert all(
            jobs.fake.state.get("bets", f"fill_{i}")["status"] == "settled" for i in range(12)
        )
        await console.shot("overview")


async def test_a_queue_no_worker_serves_says_no_worker_instead_of_running(open_console):
    async with open_console() as console:
        page = await console.sign_in_with_link()
        served = page.locator(f'tr[data-queue="{QUEUE}"] [data-col="paused"]')
        idle = page.locator('tr[data-queue="escrow"] [data-col="paused"]')  # no worker runs it
        await expect(served).to_have_text("running")
        await expect(idle).to_have_text("no worker")
        await page.goto(f"{console.base}/ui/queues/escrow")
        await expect(page.get_by_test_id("state")).to_have_text("no worker")


async def test_the_overview_fits_a_phone_screen(open_console):
    async with open_console() as console:
        phone = await console.browser.new_page(viewport={"width": 390, "height": 844})
        await console.sign_in_with_link(page=phone)
        await expect(phone.get_by_role("heading", name="Queues")).to_be_visible()
        assert await phone.evaluate("document.documentElement.scrollWidth") <= 390
        await console.shot("overview-phone", phone)


async def test_pause_from_the_console_stops_the_worker_within_a_second_and_resume_restarts_it(
    open_console,
):
    async with open_console() as console:
        jobs = console.jobs
        (runtime,) = [rt for rt in jobs.worker.runtimes if rt.queue == QUEUE]
        page = await console.sign_in_with_link()
        await page.goto(f"{console.base}/ui/queues/{QUEUE}")
        page.on("dialog", lambda d: d.accept())
        clicked = time.monotonic()
        await page.get_by_test_id("pause").click()
        await wait_until(
            lambda: jobs.worker.redis.hget(CONTROL, QUEUE), timeout_s=5, what="flag set"
        )
        flagged = time.monotonic()
        await wait_until(lambda: runtime.paused, timeout_s=1.0, what="worker paused within 1 s")
        print(f"pause: click->worker {time.monotonic() - clicked:.3f}s, "
              f"flag->worker {time.monotonic() - flagged:.3f}s")  # fmt: skip
        await expect(page.get_by_test_id("state")).to_have_text("paused by operator")
        jobs.fake.state.add_bet("held", t_end_ms=now_ms() - 1000)
        await jobs.enqueue(QUEUE, {"betId": "held"})
        await anyio.sleep(0.6)  # three control polls: a paused worker must not take it
        assert jobs.fake.state.get("bets", "held")["status"] == "open"
        await console.shot("queue-paused")
        await page.get_by_test_id("resume").click()
        await jobs.wait_done(QUEUE, "cfb.settle:held", {"betId": "held"})
        assert not runtime.paused
        await expect(page.get_by_test_id("state")).to_have_text("running")


async def test_a_dead_letter_requeued_from_the_console_settles_against_the_fake_peers(open_console):
    async with open_console() as console:
        jobs = console.jobs
        jobs.fake.state.add_bet("b_late", t_end_ms=now_ms() - 1000)
        # PlayHub refuses once with a permanent error (a bug there, fixed since)
        jobs.fake.fail("playhub", "settle_cfb_bet", status=422, times=1)
        await jobs.enqueue(QUEUE, {"betId": "b_late"})
        await jobs.wait_dead(QUEUE, "cfb.settle:b_late")
        page = await console.sign_in_with_link()
        await page.goto(f"{console.base}/ui/queues/{QUEUE}/dlq")
        await expect(page.get_by_test_id("dlq-total")).to_have_text("1")
        await console.shot("dlq")
        await page.get_by_role("link", name="cfb.settle:b_late").click()
        await expect(page.get_by_test_id("job-state")).to_have_text("dead")
        await console.shot("job-dead")
        page.on("dialog", lambda d: d.accept())
        await page.get_by_test_id("requeue-one").click()
        await expect(page.get_by_test_id("dlq-total")).to_have_text("0")
        await jobs.wait_done(QUEUE, "cfb.settle:b_late", {"betId": "b_late"})
        assert jobs.fake.state.get("bets", "b_late")["status"] == "settled"
        await page.goto(f"{console.base}/ui/audit")
        first = page.get_by_test_id("audit").locator("tbody tr").first
        await expect(first).to_contain_text("dlq.requeue")
        await expect(first).to_contain_text("console")
        await console.shot("audit")


async def test_a_payload_reads_and_copies_as_written_and_stays_inert(open_console):
    async with open_console() as console:
        jobs = console.jobs
        bet = "<img src=x onerror=alert(1)>&'"  # an unknown bet: dead at once
        await jobs.enqueue(QUEUE, {"betId": bet}, id="odd")
        await jobs.wait_dead(QUEUE, "odd")
        page = await console.sign_in_with_link()
        dialogs: list[str] = []
        page.on("dialog", lambda d: dialogs.append(d.message))
        await page.goto(f"{console.base}/ui/queues/{QUEUE}/jobs/odd")
        payload = page.locator("pre.payload")
        assert await payload.inner_text() == json.dumps(
            {"betId": bet}, indent=2, ensure_ascii=False
        )
        assert await payload.locator("img").count() == 0 and dialogs == []


async def test_the_dlq_and_job_pages_follow_changes_without_a_reload(open_console):
    async with open_console() as console:
        jobs = console.jobs
        jobs.fake.state.add_bet("b_live", t_end_ms=now_ms() - 1000)
        page = await console.sign_in_with_link()
        await page.goto(f"{console.base}/ui/queues/{QUEUE}/dlq")
        await expect(page.get_by_test_id("dlq-total")).to_have_text("0")
        jobs.fake.fail("playhub", "settle_cfb_bet", status=422, times=1)
        await jobs.enqueue(QUEUE, {"betId": "b_live"})
        await expect(page.get_by_test_id("dlq-total")).to_have_text("1", timeout=10_000)
        await expect(page.locator('tr[data-id="cfb.settle:b_live"]')).to_be_visible()
        await page.goto(f"{console.base}/ui/queues/{QUEUE}/jobs/cfb.settle:b_live")
        await expect(page.get_by_test_id("job-state")).to_have_text("dead")
        await jobs.dlq.requeue(QUEUE, ["cfb.settle:b_live"], by="test")
        await jobs.wait_done(QUEUE, "cfb.settle:b_live", {"betId": "b_live"})
        await expect(page.get_by_test_id("error")).to_contain_text("finished", timeout=10_000)


async def _failure_attempts(page) -> list[str]:
    rows = page.locator("table.grid tbody tr")
    kinds = await rows.locator("td:nth-child(3)").all_inner_texts()
    attempts = await rows.locator("td:nth-child(1)").all_inner_texts()
    return [a for a, k in zip(attempts, kinds, strict=True) if k != "replayed"]


async def test_a_requeue_says_what_it_did_numbers_the_next_attempt_and_can_reset(open_console):
    async with open_console() as console:
        jobs = console.jobs
        await jobs.enqueue(QUEUE, {"betId": "b_twice"})  # unknown bet: dead at attempt 1
        await jobs.wait_dead(QUEUE, "cfb.settle:b_twice")
        page = await console.sign_in_with_link()
        page.on("dialog", lambda d: d.accept())
        job_url = f"{console.base}/ui/queues/{QUEUE}/jobs/cfb.settle:b_twice"
        await page.goto(job_url)
        await page.get_by_test_id("requeue-one").click()
        await expect(page.get_by_test_id("said")).to_contain_text(
            "Requeued 1 job(s). Attempts kept"
        )
        await wait_until(
            lambda: _dead_again(jobs),
            what="dead again",
        )
        await page.goto(job_url)
        assert await _failure_attempts(page) == ["1", "2"]  # never the same attempt twice
        await page.get_by_test_id("reset-one").check()
        await page.get_by_test_id("requeue-one").click()
        await expect(page.get_by_test_id("said")).to_contain_text("Attempts reset")
        await console.shot("dlq-requeued")


async def _dead_again(jobs) -> bool:
    job = await jobs.dlq.find(QUEUE, "cfb.settle:b_twice")
    return job is not None and job.attempts == 2


async def _csrf(page) -> str:
    return json.loads(await page.get_attribute("body", "hx-headers"))["X-CSRF-Token"]


async def test_a_read_only_session_has_no_action_buttons_and_its_forged_post_is_refused(
    open_console,
):
    async with open_console() as console:
        jobs = console.jobs
        await jobs.enqueue(QUEUE, {"betId": "b_gone"})
        await jobs.wait_dead(QUEUE, "cfb.settle:b_gone")
        page = await console.sign_in_with_link("read")
        await expect(page.get_by_test_id("role")).to_contain_text("read-only")
        await page.goto(f"{console.base}/ui/queues/{QUEUE}")
        assert await page.locator("form[method=post] button").count() == 1  # sign out only
        await console.shot("queue-readonly")
        await page.goto(f"{console.base}/ui/queues/{QUEUE}/dlq")
        await expect(page.get_by_test_id("dlq-total")).to_have_text("1")
        assert await page.locator("[data-testid^=requeue], [data-testid^=drop]").count() == 0
        forged = await page.request.post(f"{console.base}/ui/queues/{QUEUE}/pause",
                                         form={"csrf": await _csrf(page)}, max_redirects=0)  # fmt: skip
        assert forged.status == 403
        dropped = await page.request.post(f"{console.base}/ui/queues/{QUEUE}/dlq/drop",
                                          form={"csrf": await _csrf(page), "all": "1"})  # fmt: skip
        assert dropped.status == 403
        assert await jobs.worker.redis.hget(CONTROL, QUEUE) is None
        assert await jobs.dlq.count(QUEUE) == 1


async def test_a_post_without_the_csrf_token_is_refused(open_console):
    async with open_console() as console:
        page = await console.sign_in_with_link()
        url = f"{console.base}/ui/queues/{QUEUE}/pause"
        missing = await page.request.post(url, form={"next": "/ui/"}, max_redirects=0)
        wrong = await page.request.post(url, form={"csrf": "x" * 43}, max_redirects=0)
        assert (missing.status, wrong.status) == (403, 403)
        assert "CSRF" in await missing.text()
        assert await console.jobs.worker.redis.hget(CONTROL, QUEUE) is None
        ok = await page.request.post(url, form={"csrf": await _csrf(page)}, max_redirects=0)
        assert (
            ok.status == 303 and await console.jobs.worker.redis.hget(CONTROL, QUEUE) == b"paused"
        )


async def test_logout_ends_the_session_even_for_a_copied_cookie(open_console):
    async with open_console() as console:
        page = await console.sign_in_with_link()
        (cookie,) = await page.context.cookies()
        await page.get_by_test_id("logout").click()
        await expect(page).to_have_url(f"{console.base}/ui/login")
        await page.context.add_cookies([cookie])  # someone kept a copy
        await page.goto(f"{console.base}/ui/")
        await expect(page).to_have_url(f"{console.base}/ui/login?next=/ui/")
        reused = await page.request.post(f"{console.base}/ui/queues/{QUEUE}/pause", max_redirects=0)
        assert reused.status == 401


async def test_a_read_only_session_can_sign_out_and_its_copied_cookie_stops_working(open_console):
    async with open_console() as console:
        page = await console.sign_in_with_link("read")
        await expect(page.get_by_test_id("role")).to_contain_text("read-only")
        (cookie,) = await page.context.cookies()
        await page.get_by_test_id("logout").click()
        await expect(page).to_have_url(f"{console.base}/ui/login")
        await page.context.add_cookies([cookie])  # someone kept a copy
        await page.goto(f"{console.base}/ui/")
        await expect(page).to_have_url(f"{console.base}/ui/login?next=/ui/")


async def test_the_charts_draw_the_minute_buckets_the_sampler_keeps_in_redis(open_console):
    async with open_console() as console:
        redis = console.jobs.worker.redis
        now = now_ms()
        pipe = redis.pipeline(transaction=False)
        processed = failed = 0
        for back in range(90, 0, -1):  # an hour and a half of traffic, a burst of failures
            processed += 40 + (back % 15) * 3
            failed += 6 if 20 <= back <= 30 else back % 2
            add_bucket(pipe, Layout(console.jobs.worker.settings).globals, QUEUE,
                       now - back * MINUTE_MS, (processed, failed))  # fmt: skip
        await pipe.execute()
        page = await console.sign_in_with_link()
        hour = page.locator("svg.chart").first
        label = await hour.get_attribute("aria-label")
        assert label is not None and label.startswith("last hour: ")
        drawn = int(label.split(": ")[1].split(" ")[0])
        per_minute = {back: 40 + (back % 15) * 3 for back in range(1, 91)}
        low = sum(per_minute[b] for b in range(1, 59))  # the hour's window, give or take
        high = sum(per_minute[b] for b in range(1, 62))  # the minute boundary it straddles
        assert low <= drawn <= high, (low, drawn, high)
        await console.shot("overview-charts")


async def test_the_navigation_reaches_schedules_and_workers(open_console):
    async with open_console() as console:
        page = await console.sign_in_with_link()
        await page.get_by_role("link", name="Schedules", exact=True).click()
        await expect(page.get_by_role("heading", name="Schedules")).to_be_visible()
        await expect(page.locator("table")).to_contain_text("cfb.settle.sweep")
        await console.shot("schedules")
        await page.get_by_role("link", name="Workers", exact=True).click()
        workers = page.get_by_test_id("workers")
        await expect(workers).to_contain_text(console.jobs.worker.consumer)
        await expect(workers).to_contain_text("cfb.settle")
        await console.shot("workers")
