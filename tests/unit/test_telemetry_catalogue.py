"""The telemetry catalogue against its docs, the Grafana dashboard and the rule file.

Every instrument, span and attribute of `tgworkers.engine.telemetry.recorder` is listed in
docs/observability.md; every metric a dashboard panel queries is one the catalogue
produces (by its Prometheus name), and so is every label. The rule file's expressions
are proved by promtool instead (tests/prometheus/test_rules.py: each alert fires on
series named as the catalogue names them); here its SLO objectives are checked
against the job types and the histograms' buckets, and its runbook links against
docs/runbook.md.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tgworkers.engine.telemetry.catalogue import BY_NAME
from tgworkers.engine.telemetry.recorder import INSTRUMENTS, SPANS, Attr
from tgworkers.jobs import PROCESSORS

ROOT = Path(__file__).resolve().parents[2]
DOCS = (ROOT / "docs/observability.md").read_text()
RUNBOOK = (ROOT / "docs/runbook.md").read_text()
DASHBOARD = json.loads((ROOT / "helm/tgworkers/dashboards/tgworkers.json").read_text())
RULES = yaml.safe_load((ROOT / "helm/tgworkers/alerts/tgworkers-rules.yaml").read_text())

SERIES = {name for spec in INSTRUMENTS for name in spec.series}
BUILTIN_SERIES = {"up"}  # Prometheus's own, per scrape target
RECORDED = {r["record"] for g in RULES["groups"] for r in g["rules"] if "record" in r}
RECORDED_LABELS = {k for g in RULES["groups"] for r in g["rules"] for k in r.get("labels", {})}
LABELS = {label.replace(".", "_") for spec in INSTRUMENTS for label in spec.labels}
BUILTIN_LABELS = {"le", "job", "instance"}
PROMQL_WORDS = {"by", "on", "and", "or", "unless", "offset", "without", "ignoring", "bool",
                "group_left", "group_right", "inf", "nan"}  # fmt: skip
ATTRIBUTES = [v for k, v in vars(Attr).items() if k.isupper()]


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in DASHBOARD["panels"] for t in p.get("targets", [])]


def alert_rules() -> list[dict[str, Any]]:
    return [r for g in RULES["groups"] for r in g["rules"] if "alert" in r]


def objectives() -> list[dict[str, str]]:
    """The labels of each `tgworkers_slo:objective:ratio` row, with its value as `objective`."""
    rows = [r for g in RULES["groups"] for r in g["rules"] if r.get("record") == OBJECTIVE]
    return [{**r["labels"], "objective": r["expr"]} for r in rows]


def metric_names(expr: str) -> set[str]:
    """Identifiers that are series names: not functions, keywords, labels or numbers."""
    text = re.sub(r'"[^"]*"', "", expr)
    text = re.sub(r"\{[^}]*\}", "", text)  # matchers
    text = re.sub(r"\b(by|on|without|ignoring)\s*\([^)]*\)", "", text)  # grouping labels
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    text = re.sub(r"\boffset\s+\w+", "", text)
    text = re.sub(r"(?<![A-Za-z0-9_:])\d+(\.\d+)?([eE][-+]?\d+)?", "", text)  # numbers
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        rest = text[m.end() :].lstrip()
        if rest.startswith("(") or m.group() in PROMQL_WORDS:
            continue
        names.add(m.group())
    return names


def label_names(expr: str) -> set[str]:
    found = set()
    for grouping in re.findall(r"\b(?:by|on|without|ignoring)\s*\(([^)]*)\)", expr):
        found |= {x.strip() for x in grouping.split(",") if x.strip()}
    for matchers in re.findall(r"\{([^}]*)\}", expr):
        found |= set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)", matchers))
    return found


OBJECTIVE = "tgworkers_slo:objective:ratio"
SLI_HISTOGRAMS = {"pickup": "tgworkers.job.pickup_latency", "run": "messaging.process.duration"}


@pytest.mark.parametrize("spec", INSTRUMENTS, ids=lambda s: s.name)
def test_docs_list_every_instrument_with_its_prometheus_name(spec):
    assert f"`{spec.name}`" in DOCS
    assert spec.prometheus_name in DOCS


@pytest.mark.parametrize("key", ATTRIBUTES)
def test_docs_list_every_attribute(key):
    assert f"`{key}`" in DOCS


@pytest.mark.parametrize("span", SPANS, ids=lambda s: s.name)
def test_docs_list_every_span(span):
    assert f"`{span.name}`" in DOCS
    assert all(f"`{a}`" in DOCS for a in span.attributes)


@pytest.mark.parametrize(("where", "expr"), [("dashboard", e) for e in dashboard_exprs()])
def test_every_dashboard_query_uses_series_and_labels_that_exist(where, expr):
    names = metric_names(expr)
    assert names, f"{where}: no metric found in {expr!r}"
    known = SERIES | BUILTIN_SERIES | RECORDED  # recorded: by the shipped rule file
    assert names <= known, f"{where}: unknown {names - known} in {expr!r}"
    labels = label_names(expr)
    known_labels = LABELS | BUILTIN_LABELS | RECORDED_LABELS
    assert labels <= known_labels, f"{where}: unknown labels {labels - known_labels}"


def test_the_parser_finds_names_and_ignores_functions_and_labels():
    expr = ('histogram_quantile(0.99, sum by (le, tgworkers_job_name) '
            '(rate(foo_bucket{a="x"}[5m]))) > 5 and on (q) bar offset 15m')  # fmt: skip
    assert metric_names(expr) == {"foo_bucket", "bar"}
    assert label_names(expr) == {"le", "tgworkers_job_name", "a", "q"}


def test_dashboard_uses_the_datasource_variable_and_no_hard_coded_uid():
    variables = {v["name"]: v for v in DASHBOARD["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    sources = [p["datasource"] for p in DASHBOARD["panels"] if "datasource" in p]
    sources += [t["datasource"] for p in DASHBOARD["panels"] for t in p.get("targets", [])]
    sources += [v["datasource"] for v in variables.values() if "datasource" in v]
    assert sources and all(s == {"type": "prometheus", "uid": "${datasource}"} for s in sources)
    assert "DS_PROMETHEUS" not in json.dumps(DASHBOARD)


def test_dashboard_covers_the_issue_panels():
    text = " ".join(dashboard_exprs())
    for series in ("tgworkers_jobs_processed_total", "tgworkers_jobs_failed_total",
                   "tgworkers_job_pickup_latency_seconds_bucket", "tgworkers_queue_depth",
                   "tgworkers_queue_oldest_ready_age_seconds", "tgworkers_jobs_retried_total",
                   "tgworkers_entries_reclaimed_total", "http_client_request_duration_seconds_bucket",
                   "tgworkers_schedule_lag_seconds_bucket"):  # fmt: skip
        assert series in text


def test_alert_rules_are_documented_with_a_severity_summary_and_runbook_link():
    alerts = [r["alert"] for r in alert_rules()]
    assert len(alerts) == len(set(alerts))
    anchors = {github_anchor(h) for h in re.findall(r"^#+ (.+)$", RUNBOOK, re.MULTILINE)}
    for rule in alert_rules():
        assert f"`{rule['alert']}`" in DOCS
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"]
        page, _, anchor = rule["annotations"]["runbook"].partition("#")
        assert page == "docs/runbook.md"
        assert not anchor or anchor in anchors, f"{rule['alert']}: no runbook section #{anchor}"
    # alerts read these directly or through the SLO recording rules (pickup latency: only so)
    text = " ".join(str(r["expr"]) for g in RULES["groups"] for r in g["rules"])
    for series in ("tgworkers_queue_oldest_ready_age_seconds", "tgworkers_jobs_failed_total",
                   "tgworkers_queue_depth", "tgworkers_job_pickup_latency_seconds_bucket",
                   "tgworkers_schedule_lag_seconds_bucket", "tgworkers_queue_consumers",
                   "tgworkers_ledger_violations_total", "tgworkers_job:slo_errors:ratio_rate1h"):  # fmt: skip
        assert series in text


def github_anchor(heading: str) -> str:
    return re.sub(r"[^a-z0-9 _-]", "", heading.strip().lower()).replace(" ", "-")


def test_every_job_type_has_a_pickup_and_a_dead_letter_objective_and_none_twice():
    job_types = {t.name for p in PROCESSORS for t in p.job_types} - {"tgworkers.noop"}
    keys = [(o["tgworkers_job_name"], o["tgworkers_slo"]) for o in objectives()]
    assert len(keys) == len(set(keys)), "a job type with two objectives for one SLI"
    assert {job for job, _ in keys} == job_types
    for slo in ("pickup", "dead_letter"):
        assert {job for job, s in keys if s == slo} == job_types, slo


@pytest.mark.parametrize(
    "row", objectives(), ids=lambda o: f"{o['tgworkers_job_name']}:{o['tgworkers_slo']}"
)
def test_every_latency_objective_threshold_is_a_bucket_boundary(row):
    assert re.fullmatch(r"vector\(0\.99+\)", row["objective"]), row
    if row["tgworkers_slo"] == "dead_letter":
        assert "le" not in row
        return
    spec = BY_NAME[SLI_HISTOGRAMS[row["tgworkers_slo"]]]
    # the SLI rules compare `le` with any ".0" removed: "5", never "5.0"
    assert row["le"] in {f"{b:g}" for b in spec.buckets}, f"{row}: buckets are {spec.buckets}"


LOG_CALL = re.compile(r'log\.(?:debug|info|warning|error|exception)\(\s*"([a-z_]+\.[a-z_.]+)"')


def logged_events() -> set[str]:
    files = [*(ROOT / "tgworkers/engine").rglob("*.py"), *(ROOT / "tgworkers/peers").rglob("*.py"),
             *(ROOT / "tgworkers/http").rglob("*.py"), *(ROOT / "tgworkers/bootstrap").rglob("*.py"),
             ROOT / "tgworkers/cli/run.py"]  # fmt: skip
    return {m for f in files for m in LOG_CALL.findall(f.read_text())}


def test_docs_list_every_log_event_of_the_engine_peers_and_server():
    events = logged_events()
    assert "job.dead_lettered" in events and "peer.called" in events
    documented = set(re.findall(r"`([a-z_]+\.[a-z_.]+)`", DOCS))
    assert not events - documented, f"log events missing from docs: {sorted(events - documented)}"
