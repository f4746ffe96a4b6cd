"""A real Prometheus scrapes a real worker: every dashboard query and recording rule has data.

The worker is `python -m tgworkers run` with `PORT` set, running `cfb.settle` and
`payhub.ledger.recalc` against the fake peers: a settle done, one retried after a
503, one snoozed until its round ends, one dead-lettered (404), the ledger check
finding a violation every second after one 401, and a config file polled. A private
`prometheus` loads the chart's rule files and scrapes it every second; then every
Grafana panel's query (template variables set to match everything), every dashboard
variable and every recording rule must return data, and every rule evaluate without
error. A panel query naming a series that does not exist is shown failing the check.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import yaml
from redis.asyncio import Redis

from tests.support.platform_jobs import now_ms, peers_env
from tests.support.processes import WorkerProcess, start_worker
from tests.support.prometheus import RULE_FILES, PrometheusServer, api
from tests.support.redis_server import free_port
from tests.support.wait import wait_until
from tgworkers.config import Settings
from tgworkers.devstack.fake_peers import FakePeers
from tgworkers.engine.client import Client
from tgworkers.engine.registry import Registry
from tgworkers.jobs import PROCESSORS

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "helm/tgworkers/dashboards").glob("*.json"))
BUILTIN_VARIABLES = {"__rate_interval": "1m", "__interval": "1s", "__range": "5m"}


def panels(nodes: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in nodes:
        yield panel
        yield from panels(panel.get("panels", []))  # a collapsed row holds its panels


def variables(dashboard: dict[str, Any]) -> dict[str, str]:
    """Each template variable's value for the test: its "All" value, else match anything."""
    values = dict(BUILTIN_VARIABLES)
    for v in dashboard.get("templating", {}).get("list", []):
        if v["type"] != "datasource":
            values[v["name"]] = v.get("allValue") or ".*"
    return values


def substitute(expr: str, values: dict[str, str]) -> str:
    def value(m: re.Match[str]) -> str:
        name = next(g for g in m.groups() if g)
        return values.get(name, m.group(0))

    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)", value, expr)


def dashboard_queries() -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target of every shipped dashboard."""
    found = []
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        values = variables(board)
        for panel in panels(board["panels"]):
            for target in panel.get("targets", []):
                where = f"{path.name}: {panel.get('title')} ({target.get('refId', '?')})"
                found.append((where, substitute(target["expr"], values)))
    return found


def variable_queries() -> list[tuple[str, str, str]]:
    """(name, metric, label) of every `label_values(metric, label)` variable."""
    found = []
    for path in DASHBOARDS:
        for v in json.loads(path.read_text()).get("templating", {}).get("list", []):
            query = v.get("query")
            text = query.get("query", "") if isinstance(query, dict) else str(query or "")
            if m := re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", text.strip()):
                found.append((v["name"], m.group(1), m.group(2)))
    return found


def recording_rules() -> list[tuple[str, str]]:
    found = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "record" in rule:
                    labels = ",".join(f"{k}={v}" for k, v in rule.get("labels", {}).items())
                    found.append((f"{rule['record']}{{{labels}}}", rule["expr"]))
    return found


def empty(prom: PrometheusServer, queries: list[tuple[str, str]]) -> list[str]:
    """The queries (by where) that return no series."""
    return [where for where, promql in queries if not prom.query(promql)]


def missing_thresholds(prom: PrometheusServer) -> set[tuple[str, str]]:
    """(histogram, le) of SLO objectives whose bucket `/metrics` does not serve."""
    histograms = {"pickup": "tgworkers_job_pickup_latency_seconds_bucket",
                  "run": "messaging_process_duration_seconds_bucket"}  # fmt: skip
    wanted = {
        (histograms[o["metric"]["tgworkers_slo"]], o["metric"]["le"])
        for o in prom.query('tgworkers_slo:objective:ratio{le!=""}')
    }
    served = {
        (name, r["metric"]["le"].removesuffix(".0"))
        for name in histograms.values()
        for r in prom.query(f"count by (le) ({name})")
    }
    return wanted - served


def unhealthy_rules(prom: PrometheusServer) -> list[str]:
    groups = api(prom.url, "/api/v1/rules")["groups"]
    return [
        f"{r['name']}: {r['health']} {r.get('lastError', '')}".strip()
        for g in groups
        for r in g["rules"]
        if r["health"] != "ok"
    ]


async def until_none_left(left: Callable[[], list[str]], *, timeout_s: float, what: str) -> None:
    """Poll until `left()` is empty; at the deadline, fail naming what is still left."""
    deadline = time.monotonic() + timeout_s
    while remaining := left():
        if time.monotonic() > deadline:
            raise AssertionError(f"after {timeout_s} s, {what}: {remaining}")
        await anyio.sleep(0.5)


async def enqueue_the_workload(fake: FakePeers, client: Client) -> None:
    past, later = now_ms() - 1000, now_ms() + 120_000
    fake.state.add_bet("b_done", t_end_ms=past)
    fake.state.add_bet("b_flaky", t_end_ms=past)
    fake.state.add_bet("b_later", t_end_ms=later)  # not_due: snoozed
    fake.state.set_violations([{"code": "negative_balance", "account": "u_1", "detail": "-5"}])
    fake.fail("playhub", "settle_cfb_bet", status=503, times=1)  # the first settle is retried
    fake.fail("payhub", "ledger_invariants", status=401, times=1)  # our token refused, once
    for bet in ("b_flaky", "b_done", "b_later", "b_unknown"):  # b_unknown: 404, dead-lettered
        await client.enqueue("cfb.settle", {"betId": bet})


def start_scraped_worker(
    redis_url: str, fake: FakePeers, jwk_text: str, tmp: Path
) -> tuple[WorkerProcess, int]:
    port = free_port()
    config = tmp / "config.json"
    config.write_text(json.dumps({"version": "v1"}))
    env = {**peers_env(fake, jwk_text), "PORT": str(port), "CRON_LEDGER_RECALC": "1",
           "BACKOFF_DEFAULT_MS": "100", "CONFIG_FILE": str(config), "CONFIG_POLL_S": "0.5"}  # fmt: skip
    worker = start_worker(redis_url, processors="cfb.settle,payhub.ledger.recalc",
                          app="tgworkers.jobs:PROCESSORS", env=env)  # fmt: skip
    return worker, port


async def test_every_panel_query_and_recording_rule_returns_data_from_a_real_scrape(
    fake: FakePeers, jwk_text: str, redis: Redis, redis_url: str, settings: Settings, tmp_path: Path
) -> None:
    worker, port = start_scraped_worker(redis_url, fake, jwk_text, tmp_path)
    prom = PrometheusServer(tmp_path, [f"127.0.0.1:{port}"], RULE_FILES)
    try:
        await wait_until(prom.ready, timeout_s=20, what="prometheus ready")
        await enqueue_the_workload(fake, Client(redis, Registry(PROCESSORS), settings))
        await wait_until(lambda: prom.query('up{job="tgworkers"} == 1'), timeout_s=30,
                         what="the worker scraped")  # fmt: skip
        queries = dashboard_queries() + recording_rules()
        await until_none_left(
            lambda: empty(prom, queries), timeout_s=45, what="queries without data"
        )
        for name, metric, label in variable_queries():
            values = api(prom.url, f"/api/v1/label/{label}/values", **{"match[]": metric})
            assert values, f"dashboard variable {name}: label_values({metric}, {label}) is empty"
        await until_none_left(lambda: unhealthy_rules(prom), timeout_s=10, what="rules not healthy")
        assert not missing_thresholds(prom), "SLO thresholds that are not served buckets"
        # the failing case: the same check on a panel query naming a series that does not exist
        where, promql = dashboard_queries()[0]
        broken = re.sub(r"\btgworkers_(\w+)", r"tgworkers_\1_typo", promql, count=1)
        assert broken != promql
        assert empty(prom, [(where, broken)]) == [where]
    except AssertionError as failed:
        logs = f"worker log:\n{worker.log()[-3000:]}\nprometheus log:\n{prom.log()[-3000:]}"
        raise AssertionError(f"{failed}\n{logs}") from None
    finally:
        prom.stop()
        worker.close()
