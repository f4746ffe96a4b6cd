"""The pytest plugin loads by entry point in a project that has no conftest of ours."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from tgworkers.testing import plugin

JOBS = """
import msgspec
from tgworkers.engine import Done, JobType, Processor


class Hello(msgspec.Struct, frozen=True):
    name: str


async def hello(ctx, p):
    await ctx.redis.rpush("hello", p.name)
    return Done()


PROCESSORS = [Processor(name="hello", job_types=(JobType(name="hello", payload=Hello, handler=hello),))]
"""

EXAMPLE = """
from tgworkers.testing import perform


async def test_the_ini_app_runs_on_the_toolkits_worker(tgw_worker):
    async with tgw_worker("hello") as h:
        await h.enqueue("hello", {"name": "ada"})
        runs = await h.drain("hello")
        assert await h.redis.lrange("hello", 0, -1) == [b"ada"]
    assert [(r.name, r.outcome) for r in runs] == [("hello", "Done")]


async def test_the_platforms_jobs_with_the_fake_peers(tgw_worker, tgw_peers):
    tgw_peers.state.add_bet("b_1", t_end_ms=0)
    async with tgw_worker("cfb.settle", app="tgworkers.jobs:PROCESSORS") as h:
        await h.enqueue("cfb.settle", {"betId": "b_1"})
        runs = await h.drain("cfb.settle")
    assert [r.outcome for r in runs] == ["Done"]
    h.assert_peer_called("playhub", "POST", "/internal/v1/cfb/settle", idempotency_key="cfb.settle:b_1")
    assert (await perform("cfb.settle", {"betId": "b_1"}, peers=tgw_peers)).error is None
"""

INI = """[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
pythonpath = .
tgworkers_app = myjobs:PROCESSORS
"""


def test_a_fresh_project_gets_the_fixtures_from_the_entry_point(tmp_path):
    (tmp_path / "myjobs.py").write_text(textwrap.dedent(JOBS))
    (tmp_path / "test_example.py").write_text(textwrap.dedent(EXAMPLE))
    (tmp_path / "pytest.ini").write_text(INI)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TGW_", "REDIS_", "PYTEST_"))}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        check=False,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        env=env,  # no TGW_TEST_REDIS_URL: the plugin starts its own redis-server
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_every_fixture_of_the_plugin_is_prefixed_so_none_shadows_a_projects_own():
    names = [
        n
        for n in vars(plugin)
        if not n.startswith(("_", "pytest_"))
        and callable(getattr(plugin, n))
        and getattr(plugin, n).__module__ == plugin.__name__
    ]
    assert names and all(n.startswith("tgw_") for n in names), names
