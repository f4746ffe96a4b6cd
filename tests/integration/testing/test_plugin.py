"""The pytest plugin loads by entry point in a project that has no conftest of ours."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tgworkers.testing import plugin

EXAMPLE = """
from tgworkers.testing import perform

async def test_perform_and_worker(tgw_worker, tgw_peers, tgw_redis_url):
    tgw_peers.state.add_bet("b_1", t_end_ms=0)
    async with tgw_worker("cfb.settle") as h:
        await h.enqueue("cfb.settle", {"betId": "b_1"})
        runs = await h.drain("cfb.settle")
    assert [r.outcome for r in runs] == ["Done"]
    h.assert_peer_called("playhub", "POST", "/internal/v1/cfb/settle", idempotency_key="cfb.settle:b_1")
"""


def test_a_fresh_project_gets_the_fixtures_from_the_entry_point(tmp_path, redis_server_url):
    (tmp_path / "test_example.py").write_text(textwrap.dedent(EXAMPLE))
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        check=False,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        env={"TGW_TEST_REDIS_URL": redis_server_url, "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_every_fixture_of_the_plugin_is_prefixed_so_none_shadows_a_projects_own():
    names = [
        n
        for n in vars(plugin)
        if not n.startswith(("_", "pytest_"))
        and callable(getattr(plugin, n))
        and getattr(plugin, n).__module__ == plugin.__name__
    ]
    assert names and all(n.startswith("tgw_") for n in names), names
