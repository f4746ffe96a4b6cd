"""Log lines inside a run carry the job's context and trace id; secrets are masked."""

from __future__ import annotations

import json
from io import StringIO

import structlog
from tests.integration.telemetry.test_telemetry_traces import run_job_with_retry

from tgworkers.logs import configure_logging


async def test_lines_logged_during_a_run_carry_job_context_and_trace_id(
    otel, redis, redis_url, fake, jwk_text
):
    out = StringIO()
    configure_logging("debug", fmt="json", secrets=[jwk_text], stream=out)
    try:
        await run_job_with_retry(otel, redis, redis_url, fake, jwk_text)
    finally:
        structlog.reset_defaults()
    lines = [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]
    calls = [e for e in lines if e["event"] == "peer.called"]
    assert [(e["job_id"], e["job"], e["attempt"], e["queue"]) for e in calls] == [
        ("job-1", "telemetry.call_peer", 1, "telemetry.call_peer"),
        ("job-1", "telemetry.call_peer", 2, "telemetry.call_peer"),
    ]
    runs = {s.attributes["tgworkers.job.attempt"]: s for s in otel.spans()
            if s.name.startswith("process ")}  # fmt: skip
    assert [e["trace_id"] for e in calls] == [
        format(runs[1].context.trace_id, "032x"),
        format(runs[2].context.trace_id, "032x"),
    ]
    outside = [e for e in lines if e["event"] == "worker.started"]
    assert outside and "job_id" not in outside[0]
    assert jwk_text not in out.getvalue()


def test_redactor_masks_tokens_jwts_and_url_passwords():
    out = StringIO()
    configure_logging("info", fmt="json", stream=out)
    try:
        structlog.get_logger().info(
            "x.happened", access_token="abc", url=  # noqa: S106 - test values
"https://u:hunter22@host/x",
            text="sent eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl", api_key="k",
        )  # fmt: skip
    finally:
        structlog.reset_defaults()
    event = json.loads(out.getvalue())
    assert event["access_token"] == event["api_key"] == "***"  # noqa: S105
    assert event["url"] == "https://u:***@host/x"
    assert "eyJzdWIiOiJ4In0" not in event["text"] and "c2lnbmF0dXJl" not in event["text"]
