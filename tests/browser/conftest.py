"""Browser tests: Debian's Chromium driven by Playwright against the real console.

The stack is real end to end: a worker running the platform's processors in this
test's event loop, on the real Redis fixture, calling the fake peers over
loopback, and the console served by uvicorn on a free port, exactly as `run`
serves it. Chromium is `/usr/bin/chromium` (apt; `scripts/setup-env` installs
it); no browser is downloaded. Screenshots go to `TGW_ARTIFACTS` (default: a
temp dir) so CI can keep them.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
import uvicorn
from playwright.async_api import Browser, Page, async_playwright

from tests.integration.jobs.conftest import fake, fake_server, jwk_text
from tests.support.platform_jobs import JobsHarness, jobs_worker
from tests.support.wait import wait_until
from tgworkers.devstack.fake_peers import FakePeers
from tgworkers.devstack.redis import free_port
from tgworkers.engine.ops import EngineServices
from tgworkers.http.app import create_app
from tgworkers.http.console.session import SessionStore
from tgworkers.http.health import HealthProbe
from tgworkers.http.server import EmbeddedServer

__all__ = ["fake", "fake_server", "jwk_text"]

CHROMIUM = os.environ.get("TGW_CHROMIUM", "/usr/bin/chromium")
ADMIN_TOKEN = "console-admin-token-for-browser-tests"  # noqa: S105 - a test value
READONLY_TOKEN = "console-readonly-token-for-browser-tests"  # noqa: S105 - a test value
LAUNCH_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run", "--disable-extensions", "--mute-audio",
]  # fmt: skip
ARTIFACTS = Path(os.environ.get("TGW_ARTIFACTS") or Path(tempfile.gettempdir()) / "tgw-console")
ARTIFACTS.mkdir(parents=True, exist_ok=True)


@dataclass
class Console:
    """What a browser test drives and checks."""

    jobs: JobsHarness
    browser: Browser
    page: Page
    base: str
    sessions: SessionStore

    async def sign_in_with_link(self, role: str = "admin", page: Page | None = None) -> Page:
        link = await self.sessions.issue_link(role, who=f"link-{role}")
        target = page or self.page
        await target.goto(f"{self.base}/ui/login/link?t={link}")
        return target

    async def shot(self, name: str, page: Page | None = None) -> Path:
        path = ARTIFACTS / f"{name}.png"  # the directory is made at import
        await (page or self.page).screenshot(path=str(path), full_page=True)
        return path


@asynccontextmanager
async def served(jobs: JobsHarness) -> AsyncIterator[tuple[str, SessionStore]]:
    worker = jobs.worker
    services = EngineServices.build(worker.redis, worker.registry, worker.settings)
    app = create_app(services, HealthProbe(worker), worker.settings)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                            access_log=False, lifespan="off")  # fmt: skip
    server = EmbeddedServer(config)
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        await wait_until(lambda: server.started, timeout_s=10, what="console listening")
        try:
            yield f"http://127.0.0.1:{port}", app.state.sessions
        finally:
            server.should_exit = True


@asynccontextmanager
async def console_stack(
    redis_url: str, fake: FakePeers, jwk_text: str, **extra: Any
) -> AsyncIterator[Console]:
    env: dict[str, Any] = {
        "ADMIN_TOKEN": ADMIN_TOKEN, "ADMIN_READONLY_TOKEN": READONLY_TOKEN, **extra,
    }  # fmt: skip
    async with (
        jobs_worker(redis_url, fake, jwk_text, "cfb.settle", **env) as jobs,
        served(jobs) as (base, sessions),
        async_playwright() as pw,
    ):
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(10_000)
            yield Console(jobs, browser, page, base, sessions)
        finally:
            await browser.close()


@pytest.fixture
def open_console(redis_url: str, fake: FakePeers, jwk_text: str) -> Any:
    """`async with open_console(**env) as console:` (task groups live in the test's task)."""
    if os.environ.get("TGW_SKIP_BROWSER") == "1":
        pytest.skip("TGW_SKIP_BROWSER=1")
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: run scripts/setup-env as root or apt-get install chromium"
        )
    return lambda **env: console_stack(redis_url, fake, jwk_text, **env)
