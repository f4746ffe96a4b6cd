"""The chart through the real helm: lint, template, and every manifest against its schema.

`helm lint --strict` and `helm template` run for the default values and every example values
file; each rendered manifest is validated against Kubernetes' schemas (tests/support/helm.py:
kubernetes-validate for Kubernetes 1.33, strict) or, for KEDA's and prometheus-operator's custom
resources, against tests/support/crds/. Each check also gets a broken copy of the chart (or a
wrong value) and must report it: a check that cannot fail proves nothing.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from tests.support.helm import CHART, EXAMPLES, helm, render, validate, values_args

CASES = [None, *EXAMPLES]


def case_id(path: Path | None) -> str:
    return path.name if path else "values.yaml"


def files(example: Path | None) -> list[Path]:
    return [] if example is None else [example]


@pytest.mark.parametrize("example", CASES, ids=case_id)
def test_helm_lint_passes_for_the_defaults_and_every_example(example):
    out = helm("lint", "--strict", CHART, *values_args(files(example)))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 chart(s) failed" in out.stdout


@pytest.mark.parametrize("example", CASES, ids=case_id)
def test_every_rendered_manifest_validates_against_its_schema(example):
    docs = render(values=files(example))
    assert docs
    for doc in docs:
        validate(doc)


def test_the_renders_cover_every_kind_the_chart_ships_but_the_pod_monitor():
    kinds = {d["kind"] for example in CASES for d in render(values=files(example))}
    assert kinds >= {
        "Deployment", "PodDisruptionBudget", "Service", "ServiceAccount", "ConfigMap",
        "ScaledObject", "TriggerAuthentication", "ServiceMonitor", "PrometheusRule",
    }, kinds  # fmt: skip
    assert "PodMonitor" not in kinds


@pytest.mark.parametrize("example", CASES, ids=case_id)
def test_each_scaled_object_sums_all_its_triggers_into_one_metric(example):
    for scaled in [d for d in render(values=files(example)) if d["kind"] == "ScaledObject"]:
        names = [t["name"] for t in scaled["spec"]["triggers"]]
        assert all(re.fullmatch(r"q_\w+_\d+", n) for n in names), names  # expr identifiers
        assert len(set(names)) == len(names)
        modifiers = scaled["spec"]["advanced"]["scalingModifiers"]
        assert modifiers["formula"] == " + ".join(names)
        assert modifiers["metricType"] == "AverageValue"
        assert modifiers["activationTarget"] == "0"
        assert {t["metadata"]["streamLength"] for t in scaled["spec"]["triggers"]} == {
            modifiers["target"]
        }


# -- each check fails when its subject is broken ---------------------------------------


@pytest.fixture
def chart_copy(tmp_path) -> Callable[[str, str, str], Path]:
    """A copy of the chart with one text replaced in one template."""

    def broken(template: str, old: str, new: str) -> Path:
        chart = tmp_path / "tgworkers"
        shutil.copytree(CHART, chart, dirs_exist_ok=True)
        path = chart / "templates" / template
        text = path.read_text()
        assert old in text, (template, old)
        path.write_text(text.replace(old, new, 1))
        return chart

    return broken


def write_values(tmp_path: Path, values: dict[str, Any]) -> Path:
    path = tmp_path / "bad-values.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def test_helm_lint_reports_a_wrong_type_in_values(tmp_path):
    bad = write_values(
        tmp_path, {"groups": [{"name": "a", "processors": ["escrow"], "replicas": "two"}]}
    )
    out = helm("lint", "--strict", CHART, "-f", bad)
    assert out.returncode != 0
    assert "at '/groups/0/replicas': got string, want integer" in out.stdout, out.stdout
    assert "1 chart(s) failed" in out.stderr


def test_helm_lint_reports_a_broken_template(chart_copy):
    chart = chart_copy("deployment.yaml", "{{- range $g := .Values.groups }}", "{{- range $g := }}")
    out = helm("lint", "--strict", chart)
    assert out.returncode != 0
    assert "deployment.yaml" in out.stdout + out.stderr, out.stdout + out.stderr


def test_helm_template_refuses_scale_to_zero_for_a_group_with_schedules(tmp_path):
    bad = write_values(
        tmp_path,
        {
            "groups": [
                {
                    "name": "cfb",
                    "processors": ["cfb.settle"],
                    "replicas": 1,
                    "autoscaling": {
                        "enabled": True,
                        "minReplicas": 0,
                        "maxReplicas": 2,
                        "backlogPerReplica": 10,
                    },
                }
            ]
        },
    )
    out = helm("template", "t", CHART, "-f", bad)
    assert out.returncode != 0
    assert "minReplicas: 0 would stop the schedules of cfb.settle" in out.stderr, out.stderr


def test_kubernetes_schema_reports_an_unknown_field(chart_copy):
    chart = chart_copy("deployment.yaml", "revisionHistoryLimit:", "revisionHistoryLimits:")
    (deployment, *_) = [d for d in render(chart) if d["kind"] == "Deployment"]
    with pytest.raises(jsonschema.ValidationError, match="revisionHistoryLimits"):
        validate(deployment)


def test_kubernetes_schema_reports_a_wrong_type(chart_copy):
    chart = chart_copy(
        "deployment.yaml", "containerPort: {{ $.Values.env.PORT | int }}",
        "containerPort: {{ $.Values.env.PORT | quote }}",
    )  # fmt: skip
    (deployment, *_) = [d for d in render(chart) if d["kind"] == "Deployment"]
    with pytest.raises(jsonschema.ValidationError, match="'8099' is not of type 'integer'"):
        validate(deployment)


def test_keda_schema_reports_a_misnamed_scaled_object_field(chart_copy):
    chart = chart_copy("scaledobject.yaml", "  minReplicaCount:", "  minReplicas:")
    docs = render(chart, values=[CHART / "examples/scale-to-zero.yaml"])
    (scaled,) = [d for d in docs if d["kind"] == "ScaledObject"]
    with pytest.raises(jsonschema.ValidationError, match="'minReplicas' was unexpected"):
        validate(scaled)


def test_keda_schema_reports_a_trigger_metadata_value_that_is_not_a_string(chart_copy):
    chart = chart_copy(
        "scaledobject.yaml", "streamLength: {{ $a.backlogPerReplica | quote }}",
        "streamLength: {{ $a.backlogPerReplica }}",
    )  # fmt: skip
    docs = render(chart, values=[CHART / "examples/scale-to-zero.yaml"])
    (scaled,) = [d for d in docs if d["kind"] == "ScaledObject"]
    with pytest.raises(jsonschema.ValidationError, match="20 is not of type 'string'"):
        validate(scaled)


def test_service_monitor_schema_reports_a_misnamed_endpoint_field(chart_copy):
    chart = chart_copy("servicemonitor.yaml", "scrapeTimeout:", "scrape_timeout:")
    docs = render(chart, values=[CHART / "examples/kube-prometheus-stack.yaml"])
    (monitor,) = [d for d in docs if d["kind"] == "ServiceMonitor"]
    with pytest.raises(jsonschema.ValidationError, match="'scrape_timeout' was unexpected"):
        validate(monitor)


def test_a_kind_without_a_schema_is_an_error_not_a_pass():
    docs = render(sets={"metrics.podMonitor.enabled": True})
    (monitor,) = [d for d in docs if d["kind"] == "PodMonitor"]
    with pytest.raises(LookupError, match="no schema for PodMonitor"):
        validate(monitor)
