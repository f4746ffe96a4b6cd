"""Issue 26's controls in the console, in Chromium: rate limits, single-job actions."""

from __future__ import annotations

from playwright.async_api import expect

from tests.support.platform_jobs import now_ms

QUEUE = "cfb.settle"


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
