"""Issue 26's controls in the console, in Chromium: rate limits, single-job actions."""

from __future__ import annotations

from playwright.async_api import expect

from tests.support.platform_jobs import now_ms
from tests.support.wait import wait_until

QUEUE = "cfb.settle"
SETTLE = "/internal/v1/cfb/settle"


async def test_the_overview_shows_each_shared_rate_limit_and_its_counters(open_console):
    async with open_console(RATE_PLAYHUB_PER_S="5") as console:
        jobs = console.jobs
        for i in range(3):
            jobs.fake.state.add_bet(f"rl_{i}", t_end_ms=now_ms() - 1000)
            await jobs.enqueue(QUEUE, {"betId": f"rl_{i}"})
        page = await console.sign_in_with_link()
        row = page.locator('#rate-limits tr[data-limit="peer:playhub"]')
        await expect(row.locator('[data-col="per-s"]')).to_have_text("5/s")
        await expect(row.locator('[data-col="taken"]')).to_have_text("3", timeout=10_000)
        await console.shot("rate-limits")


async def test_a_running_job_is_cancelled_from_its_page_and_shows_dead(open_console):
    async with open_console() as console:
        jobs = console.jobs
        jobs.fake.state.add_bet("b_hang", t_end_ms=now_ms() - 1000)
        jobs.fake.hang("playhub", "settle_cfb_bet", hang_s=30)
        await jobs.enqueue(QUEUE, {"betId": "b_hang"})
        await wait_until(lambda: jobs.calls("playhub", SETTLE), what="the job calling PlayHub")
        page = await console.sign_in_with_link()
        await page.goto(f"{console.base}/ui/queues/{QUEUE}/jobs/cfb.settle:b_hang")
        await expect(page.get_by_test_id("job-state")).to_have_text("in flight")
        page.on("dialog", lambda d: d.accept())
        await page.get_by_test_id("cancel-job").click()
        await expect(page.get_by_test_id("job-state")).to_have_text("dead")
        await expect(page.locator("body")).to_contain_text("cancelled by console:")
        await console.shot("job-cancelled")
        dead = await jobs.wait_dead(QUEUE, "cfb.settle:b_hang")
        assert dead.reason.startswith("cancelled by console:")
        await page.goto(f"{console.base}/ui/audit")
        first = page.get_by_test_id("audit").locator("tbody tr").first
        await expect(first).to_contain_text("job.cancel")


async def test_a_delayed_job_is_run_now_or_deleted_from_its_page(open_console):
    async with open_console() as console:
        jobs = console.jobs
        for bet in ("b_now", "b_del"):
            jobs.fake.state.add_bet(bet, t_end_ms=now_ms() - 1000)
            await jobs.enqueue(QUEUE, {"betId": bet}, delay_s=3600)
        page = await console.sign_in_with_link()
        page.on("dialog", lambda d: d.accept())
        await page.goto(f"{console.base}/ui/queues/{QUEUE}/jobs/cfb.settle:b_now")
        await expect(page.get_by_test_id("job-state")).to_have_text("delayed")
        await page.get_by_test_id("run-now").click()
        await jobs.wait_done(QUEUE, "cfb.settle:b_now", {"betId": "b_now"})
        await page.goto(f"{console.base}/ui/queues/{QUEUE}/jobs/cfb.settle:b_del")
        await page.get_by_test_id("delete-job").click()
        await expect(page).to_have_url(f"{console.base}/ui/queues/{QUEUE}")
        assert await jobs.client.state(QUEUE, "cfb.settle:b_del", {"betId": "b_del"}) is None
        assert jobs.fake.state.get("bets", "b_del")["status"] == "open"


async def test_the_job_page_shows_a_deadline_and_an_expired_job_in_the_dlq(open_console):
    async with open_console() as console:
        jobs = console.jobs
        jobs.fake.state.add_bet("b_dl", t_end_ms=now_ms() - 1000)
        jobs.fake.state.add_bet("b_gone", t_end_ms=now_ms() - 1000)
        deadline = now_ms() + 3_600_000
        await jobs.client.enqueue(QUEUE, {"betId": "b_dl"}, delay_s=600, expires_at_ms=deadline)
        await jobs.client.enqueue(QUEUE, {"betId": "b_gone"}, expires_at_ms=now_ms() - 1)
        await jobs.wait_dead(QUEUE, "cfb.settle:b_gone")
        page = await console.sign_in_with_link()
        await page.goto(f"{console.base}/ui/queues/{QUEUE}/jobs/cfb.settle:b_dl")
        await expect(page.get_by_test_id("job-expires")).to_contain_text("UTC")
        await page.goto(f"{console.base}/ui/queues/{QUEUE}/jobs/cfb.settle:b_gone")
        await expect(page.get_by_test_id("job-state")).to_have_text("dead")
        await expect(page.locator("body")).to_contain_text("expired at")
        assert jobs.calls("playhub", SETTLE) == []  # the expired job never called PlayHub


async def test_a_schedule_is_paused_run_now_and_resumed_from_the_schedules_page(open_console):
    async with open_console() as console:
        page = await console.sign_in_with_link()
        page.on("dialog", lambda d: d.accept())
        await page.goto(f"{console.base}/ui/schedules")
        row = page.locator('tr[data-schedule="cfb.settle.sweep"]')
        await expect(row.locator('[data-col="next"] div')).to_have_count(5)
        await row.get_by_test_id("pause-schedule").click()
        await expect(row.locator('[data-col="state"]')).to_contain_text("paused")
        await row.get_by_test_id("run-schedule-now").click()
        await wait_until(
            lambda: console.jobs.calls("playhub", "/internal/v1/cfb/bets"),
            timeout_s=10, what="the sweep run now, asking PlayHub for open bets",
        )  # fmt: skip
        await expect(row.locator('[data-col="state"]')).to_contain_text("paused")
        await row.get_by_test_id("resume-schedule").click()
        await expect(row.locator('[data-col="state"]')).to_contain_text("active")
        await console.shot("schedules-controls")
        await page.goto(f"{console.base}/ui/audit")
        rows = page.get_by_test_id("audit").locator("tbody tr")
        await expect(rows.nth(0)).to_contain_text("schedule.resume")
        await expect(rows.nth(1)).to_contain_text("schedule.run_now")
        await expect(rows.nth(2)).to_contain_text("schedule.pause")


async def test_a_settled_bet_is_found_on_the_finished_page(open_console):
    async with open_console() as console:
        jobs = console.jobs
        jobs.fake.state.add_bet("b_123", t_end_ms=now_ms() - 1000)
        jobs.fake.fail("playhub", "settle_cfb_bet", status=503, times=1)  # settles on attempt 2
        await jobs.enqueue(QUEUE, {"betId": "b_123"})
        await jobs.wait_done(QUEUE, "cfb.settle:b_123", {"betId": "b_123"}, timeout_s=15)
        records = "{tgw:cfb.settle:0}:finished:ids"  # written up to 200 ms after the settle
        await wait_until(lambda: jobs.worker.redis.zcard(records), what="the finish record")
        page = await console.sign_in_with_link()
        await page.get_by_role("link", name="Finished").click()
        await page.fill("#prefix", "cfb.settle:b_12")
        await page.get_by_test_id("finished-search").click()
        row = page.locator('tr[data-job="cfb.settle:b_123"]')
        await expect(row.locator('[data-col="attempt"]')).to_have_text("2", timeout=10_000)
        await page.locator('a[data-sort="attempt"]').click()
        await expect(row.locator('[data-col="attempt"]')).to_have_text("2")
        await expect(page.locator('a[data-sort="attempt"]')).to_contain_text("▲")
        await console.shot("finished")
        await page.fill("#prefix", "cfb.settle:b_999")
        await page.get_by_test_id("finished-search").click()
        await expect(page.get_by_test_id("finished-none")).to_be_visible()


async def test_the_dlq_page_filters_by_error_text_and_sorts_by_a_column(open_console):
    async with open_console() as console:
        jobs = console.jobs
        for bet, status in (("b_a", 422), ("b_b", 404), ("b_c", 422)):
            jobs.fake.state.add_bet(bet, t_end_ms=now_ms() - 1000)
            jobs.fake.fail("playhub", "settle_cfb_bet", status=status, times=1)
            await jobs.enqueue(QUEUE, {"betId": bet})
            await jobs.wait_dead(QUEUE, f"cfb.settle:{bet}")
        page = await console.sign_in_with_link()
        await page.goto(f"{console.base}/ui/queues/{QUEUE}/dlq")
        await page.fill("#idPrefix", "cfb.settle:b_")
        await page.fill("#error", "404")
        await page.get_by_test_id("dlq-filter").click()
        rows = page.get_by_test_id("dlq").locator("tbody tr")
        await expect(rows).to_have_count(1)
        await expect(rows.first).to_have_attribute("data-id", "cfb.settle:b_b")
        await page.goto(f"{console.base}/ui/queues/{QUEUE}/dlq")
        await page.locator('a[data-sort="id"]').click()
        await page.locator('a[data-sort="id"]').click()  # again: descending
        await expect(rows.first).to_have_attribute("data-id", "cfb.settle:b_c")
        await expect(rows.last).to_have_attribute("data-id", "cfb.settle:b_a")
        await console.shot("dlq-filtered")
