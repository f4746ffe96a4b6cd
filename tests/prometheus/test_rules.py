"""The shipped rule files, proved by promtool.

`promtool check rules` parses every rule file the chart ships; `promtool test rules`
runs tests/prometheus/rules/*.test.yaml, where every alert fires on series that
should fire it and stays silent on series that should not. The input series carry
only names and labels the engine exports (checked against the telemetry catalogue),
so an alert that fires in these tests queries real series with real labels: this
replaces the regex check of rule expressions in tests/unit/test_telemetry_catalogue.py.

The last tests break a copy of a rule file and watch each check fail.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.prometheus import RULE_FILES, RULE_TESTS, promtool
from tgworkers.engine.telemetry.recorder import INSTRUMENTS

SERIES = {name for spec in INSTRUMENTS for name in spec.series} | {"up"}
LABELS = {label.replace(".", "_") for spec in INSTRUMENTS for label in spec.labels}
LABELS |= {"le", "job", "instance"}  # Prometheus's own, and the histogram bucket's
SERIES_NOTATION = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)\{(.*)\}$")


def alerts() -> set[str]:
    return {
        rule["alert"]
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }


def rule_tests() -> list[dict[str, Any]]:
    return [t for path in RULE_TESTS for t in yaml.safe_load(path.read_text())["tests"]]


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_promtool_check_rules_accepts_every_shipped_rule_file(path: Path) -> None:
    result = promtool("check", "rules", path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_of_every_alert_pass() -> None:
    result = promtool("test", "rules", *RULE_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_test_where_it_fires_and_one_where_it_is_silent() -> None:
    checks = [c for t in rule_tests() for c in t.get("alert_rule_test", [])]
    fired = {c["alertname"] for c in checks if c.get("exp_alerts")}
    silent = {c["alertname"] for c in checks if not c.get("exp_alerts")}
    assert alerts() - fired == set(), "alerts never shown firing"
    assert alerts() - silent == set(), "alerts never shown silent"


def test_input_series_use_only_names_and_labels_the_engine_exports() -> None:
    for series in (s["series"] for t in rule_tests() for s in t["input_series"]):
        match = SERIES_NOTATION.match(series)
        assert match, series
        name, matchers = match.groups()
        labels = set(re.findall(r'([A-Za-z_][A-Za-z0-9_]*)="', matchers))
        assert name in SERIES, f"{name} is not a series of the catalogue"
        assert labels <= LABELS, f"{series}: labels {labels - LABELS} are not exported"


# ---------------------------------------------------------------- each check can fail

RULES = RULE_FILES[0]


def broken_copy(tmp_path: Path, old: str, new: str) -> Path:
    """The rule file with one change, and the promtool tests pointed at it."""
    text = RULES.read_text()
    assert text.count(old) >= 1, old
    (tmp_path / "alerts").mkdir()
    (tmp_path / "alerts" / RULES.name).write_text(text.replace(old, new, 1))
    (tmp_path / "a" / "b").mkdir(parents=True)
    for test in RULE_TESTS:  # rule_files: ../../../helm/tgworkers/alerts/… from a/b/
        rewritten = test.read_text().replace("../../../helm/tgworkers/alerts/", "../../alerts/")
        (tmp_path / "a" / "b" / test.name).write_text(rewritten)
    return tmp_path


def test_promtool_check_rules_fails_on_a_broken_expression(tmp_path: Path) -> None:
    copy = broken_copy(tmp_path, "(tgworkers_queue_oldest_ready_age_seconds) > 300",
                       "(tgworkers_queue_oldest_ready_age_seconds) > > 300")  # fmt: skip
    result = promtool("check", "rules", copy / "alerts" / RULES.name)
    assert result.returncode != 0
    assert "parse error" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("alert", "old", "new", "tests"),
    [
        ("TgworkersHighFailureRatio", "> 0.10", "> 0.30", "alerts.test.yaml"),
        ("TgworkersSloPickupFastBurn", "> on (tgworkers_job_name, tgworkers_slo) (14.4 *",
         "> on (tgworkers_job_name, tgworkers_slo) (30 *", "slo.test.yaml"),
    ],
)  # fmt: skip
def test_promtool_test_fails_when_an_alert_is_weakened(
    tmp_path: Path, alert: str, old: str, new: str, tests: str
) -> None:
    copy = broken_copy(tmp_path, old, new)
    result = promtool("test", "rules", copy / "a" / "b" / tests)
    assert result.returncode != 0
    assert f"alertname: {alert}," in result.stdout + result.stderr
