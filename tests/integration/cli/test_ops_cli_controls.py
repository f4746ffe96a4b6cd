"""Issue 26's controls from the CLI: rate limits in `stats`, single-job actions."""

from __future__ import annotations

import json

from tests.support.cli_runner import cli


async def test_stats_shows_each_shared_rate_limit(redis_url):
    env = {"RATE_QUEUE_TEST_WORK_PER_S": "25"}
    doc = await cli(redis_url, "stats", "--json", env=env)
    text = await cli(redis_url, "stats", env={**env, "COLUMNS": "200"})
    assert (doc.rc, text.rc) == (0, 0), doc.err + text.err
    assert json.loads(doc.out)["limits"] == [
        {"scope": "queue", "name": "test.work", "perS": 25.0, "allowed": 0, "waited": 0,
         "refused": 0},
    ]  # fmt: skip
    assert "shared rate limits" in text.out and "test.work" in text.out


async def test_a_rate_limit_naming_no_peer_stops_the_command_with_exit_2(redis_url):
    result = await cli(redis_url, "stats", env={"RATE_PLAYHUB2_PER_S": "5"})
    assert result.rc == 2
    assert result.err_lines == [result.err_lines[0]]
    assert result.err_lines[0].endswith(
        "RATE_PLAYHUB2_PER_S: no peer PLAYHUB2; known: "
        "PAYHUB, PLAYHUB, CAMPAIGNS, ESCROW, DISCOVERY, PRICE"
    )
