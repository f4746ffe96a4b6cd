"""The Helm chart, checked by reading its files.

test_helm_render.py runs the real `helm lint`/`helm template` and validates what
they render; this file checks what neither sees: values.yaml and every example
validate against values.schema.json and name only real processors; every
`.Values` path a template reads exists in values.yaml (or, inside a group, in
the schema); every KEDA trigger metadata key is one KEDA documents for that
trigger type; template blocks are balanced; the stream names the triggers
watch are the engine's.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import jsonschema
import pytest
import yaml
from tests.support.processes import ROOT

from tgworkers.engine.wire.keys import PartitionKeys
from tgworkers.jobs import PROCESSORS

CHART = ROOT / "helm/tgworkers"
TEMPLATES = sorted((CHART / "templates").glob("*"))
EXAMPLES = sorted((CHART / "examples").glob("*.yaml"))
SCHEMA = json.loads((CHART / "values.schema.json").read_text())
VALUES = yaml.safe_load((CHART / "values.yaml").read_text())

# KEDA documents these metadata keys for its Redis stream triggers:
# keda.sh/docs/2.16/scalers/redis-streams/ and .../redis-cluster-streams/ ("Trigger
# Specification" and "Parameter list"). A key not listed there is ignored by KEDA.
KEDA_COMMON = {
    "usernameFromEnv", "passwordFromEnv", "stream", "consumerGroup", "pendingEntriesCount",
    "streamLength", "lagCount", "activationLagCount", "enableTLS", "unsafeSsl", "databaseIndex",
}  # fmt: skip
KEDA_METADATA = {
    "redis-streams": KEDA_COMMON
    | {"address", "host", "port", "addressFromEnv", "hostFromEnv", "portFromEnv"},
    "redis-cluster-streams": KEDA_COMMON
    | {"addresses", "hosts", "ports", "addressesFromEnv", "hostsFromEnv", "portsFromEnv"},
}
# TriggerAuthentication parameters of the same pages ("Authentication Parameters").
KEDA_AUTH_PARAMETERS = {"username", "password", "tls", "ca", "cert", "key", "keyPassword"}


def merged(base: Any, over: Any) -> Any:
    """Helm's values merge: maps merge key by key, anything else is replaced."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = merged(base.get(k), v) if k in base else v
        return out
    return copy.deepcopy(over)


@pytest.mark.parametrize("example", [None, *EXAMPLES], ids=lambda p: p.name if p else "values")
def test_values_and_every_example_validate_against_the_schema(example):
    values = VALUES if example is None else merged(VALUES, yaml.safe_load(example.read_text()))
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    jsonschema.validate(values, SCHEMA, cls=jsonschema.Draft7Validator)
    known = {p.name for p in PROCESSORS}
    for group in values["groups"]:
        assert set(group["processors"]) <= known, group["processors"]
    assert set(values["partitions"]) <= known


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"image": {"pullPolicy": "Sometimes"}}, "pullPolicy"),
        ({"groups": [{"name": "a", "replicas": 1}]}, "processors"),
        ({"groups": [{"name": "A_b", "processors": ["escrow"], "replicas": 1}]}, "A_b"),
        ({"partitions": {"escrow": 0}}, "0"),
        (
            {
                "groups": [
                    {
                        "name": "a",
                        "processors": ["escrow"],
                        "replicas": 1,
                        "autoscaling": {"enabled": True},
                    }
                ]
            },
            "maxReplicas",
        ),
        ({"groups": [{"name": "a", "processors": ["escrow"], "replicas": 1, "cpu": 2}]}, "cpu"),
        ({"env": {"SHUTDOWN_GRACE_S": "soon"}}, "soon"),
        (  # renamed when its meaning changed (per stream -> per group): an old file must fail
            {
                "groups": [
                    {
                        "name": "a",
                        "processors": ["escrow"],
                        "replicas": 1,
                        "autoscaling": {"enabled": True, "maxReplicas": 2, "streamLength": 5},
                    }
                ]
            },
            "streamLength",
        ),
    ],
)
def test_schema_refuses_bad_values_naming_them(change, where):
    with pytest.raises(jsonschema.ValidationError, match=where):
        jsonschema.validate(merged(VALUES, change), SCHEMA, cls=jsonschema.Draft7Validator)


def test_a_group_without_autoscaling_is_valid_and_renders_fixed_replicas():
    group = next(g for g in VALUES["groups"] if "autoscaling" not in g)
    jsonschema.validate(merged(VALUES, {"groups": [group]}), SCHEMA)
    deployment = (CHART / "templates/deployment.yaml").read_text()
    assert '{{- if not (dig "autoscaling" "enabled" false $g) }}' in deployment
    assert "$g.autoscaling.enabled" not in deployment, "nil map access fails helm template"


# -- what the templates read ----------------------------------------------------------

REF = re.compile(r"(\$?\w*)\.Values((?:\.\w+)+)|(\$\w+)((?:\.\w+)+)")
ASSIGN = re.compile(r"\$(\w+) :?= (\$?\.Values(?:\.\w+)*|\$\w+(?:\.\w+)+)")
RANGE = re.compile(r"range \$(\w+) := (\$?\.Values(?:\.\w+)+)")
DIG = re.compile(r'dig((?: "\w+")+) \S+ \$(\w+)')


def schema_at(path: list[str]) -> dict[str, Any] | None:
    node: dict[str, Any] = SCHEMA
    for part in path:
        if part == "[]":
            node = node["items"]
        elif part in node.get("properties", {}):
            node = node["properties"][part]
        elif "properties" not in node and node.get("additionalProperties") is not False:
            return node  # a free-form map (env, labels, resources): any key may be read
        else:
            return None
    return node


def values_at(path: list[str]) -> bool:
    node: Any = VALUES
    for part in path:
        if part == "[]":
            return True  # inside a list item: optional keys are checked by the schema
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def bindings(text: str) -> dict[str, list[str]]:
    """`$var` -> the values path it stands for (`[]` for an item of a ranged list)."""
    bound: dict[str, list[str]] = {}
    for var, source in RANGE.findall(text):
        bound[var] = [*source.split(".Values.", 1)[1].split("."), "[]"]
    ranged = set(bound)
    for var, source in ASSIGN.findall(text):
        if var in ranged:
            continue
        if ".Values" in source:
            bound[var] = source.split(".Values", 1)[1].strip(".").split(".")
        elif (head := source.split(".")[0].lstrip("$")) in bound:
            bound[var] = [*bound[head], *source.split(".")[1:]]
    return bound


def template_paths(text: str) -> set[tuple[str, ...]]:
    """Every values path a template reads, with `$var` bindings resolved."""
    bound = bindings(text)
    paths: set[tuple[str, ...]] = set()
    for m in REF.finditer(text):
        if m.group(2):
            paths.add(tuple(m.group(2).strip(".").split(".")))
        elif (var := m.group(3).lstrip("$")) in bound:
            paths.add((*bound[var], *m.group(4).strip(".").split(".")))
    for keys, var in DIG.findall(text):
        if var in bound:
            paths.add((*bound[var], *re.findall(r'"(\w+)"', keys)))
    return paths


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_every_values_path_a_template_reads_exists_in_values_and_schema(template):
    paths = template_paths(template.read_text())
    for path in paths:
        assert schema_at(list(path)) is not None, f"{template.name}: {'.'.join(path)} not in schema"
        assert values_at(list(path)), f"{template.name}: {'.'.join(path)} not in values.yaml"


def test_the_reference_check_sees_group_fields_and_bound_variables():
    paths = template_paths((CHART / "templates/scaledobject.yaml").read_text())
    assert ("groups", "[]", "autoscaling", "backlogPerReplica") in paths
    assert ("groups", "[]", "autoscaling", "enabled") in paths
    assert ("redis", "tls", "secretKeys", "tls") in paths
    assert schema_at(["groups", "[]", "autoscaling", "nonsense"]) is None


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_template_actions_and_blocks_are_balanced(template):
    text = template.read_text()
    actions_text = re.findall(r"\{\{(.*?)\}\}", text, re.DOTALL)
    assert len(actions_text) == text.count("{{"), template.name
    assert not any("{{" in a for a in actions_text), template.name
    actions = re.findall(r"\{\{-?\s*(\w+)", text)
    opened = sum(a in ("if", "range", "with", "define") for a in actions)
    assert opened == actions.count("end"), (template.name, opened, actions.count("end"))


# -- KEDA ---------------------------------------------------------------------------


def trigger_metadata_keys() -> set[str]:
    text = (CHART / "templates/scaledobject.yaml").read_text()
    block = text.split("      metadata:\n", 1)[1].split("      {{- if include", 1)[0]
    return set(re.findall(r"^ {8}(\w+):", block, re.MULTILINE))


def test_every_keda_metadata_key_is_documented_for_both_trigger_types():
    keys = trigger_metadata_keys()
    assert {"stream", "streamLength", "address", "addresses", "enableTLS"} <= keys
    text = (CHART / "templates/scaledobject.yaml").read_text()
    for trigger_type in KEDA_METADATA:
        assert trigger_type in text
    assert keys - {"addresses"} <= KEDA_METADATA["redis-streams"]
    assert keys - {"address", "databaseIndex"} <= KEDA_METADATA["redis-cluster-streams"]
    assert "consumerGroup" not in keys, "with a consumerGroup KEDA ignores streamLength"


def test_trigger_authentication_uses_documented_parameters_from_the_secret():
    text = (CHART / "templates/triggerauthentication.yaml").read_text()
    params = set(re.findall(r'"(\w+)" \$', text))
    assert params and params <= KEDA_AUTH_PARAMETERS
    assert "name: {{ $.Values.existingSecret }}" in text


def test_triggers_watch_the_engines_stream_names_one_per_partition():
    text = (CHART / "templates/scaledobject.yaml").read_text()
    (fmt,) = re.findall(r'printf "(\{%s:%s:%d\}:ready)" \$prefix \$p \$i', text)
    assert fmt % ("tgw", "escrow", 2) == PartitionKeys("tgw", "escrow", 2).ready
    assert "range $i := until $n" in text
    assert "index $.Values.partitions $p" in text


def test_groups_with_schedules_never_scale_to_zero():
    helpers = (CHART / "templates/_helpers.tpl").read_text()
    block = helpers.split('define "tgworkers.scheduledProcessors" -}}', 1)[1].split("{{-", 1)[0]
    assert set(block.split()) == {p.name for p in PROCESSORS if p.schedules}
    text = (CHART / "templates/scaledobject.yaml").read_text()
    assert "(eq $min 0) (has $p $scheduled)" in text and "fail (printf" in text


# -- pods ---------------------------------------------------------------------------


def test_pods_meet_the_restricted_pod_security_standard():
    pod, container = VALUES["podSecurityContext"], VALUES["securityContext"]
    assert pod["runAsNonRoot"] and pod["runAsUser"] != 0
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["capabilities"] == {"drop": ["ALL"]}
    assert container["readOnlyRootFilesystem"] and not container["allowPrivilegeEscalation"]
    deployment = (CHART / "templates/deployment.yaml").read_text()
    assert "toYaml $.Values.podSecurityContext" in deployment
    assert "toYaml $.Values.securityContext" in deployment
    assert "startupProbe:" in deployment and "emptyDir" in deployment  # /tmp on a read-only root


def test_grace_period_is_derived_from_shutdown_grace_once():
    assert "terminationGracePeriodSeconds" not in VALUES
    helpers = (CHART / "templates/_helpers.tpl").read_text()
    assert ".Values.env.SHUTDOWN_GRACE_S" in helpers
    assert ".Values.terminationGraceMarginSeconds" in helpers
    deployment = (CHART / "templates/deployment.yaml").read_text()
    assert deployment.count("terminationGracePeriodSeconds:") == 1


def test_image_tag_defaults_to_app_version_and_objects_carry_standard_labels():
    assert VALUES["image"]["tag"] == ""
    helpers = (CHART / "templates/_helpers.tpl").read_text()
    assert "default .Chart.AppVersion .Values.image.tag" in helpers
    for label in ("helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/name"):
        assert label in helpers
    for template in TEMPLATES:
        if template.suffix == ".yaml":
            assert 'include "tgworkers.labels"' in template.read_text(), template.name


def test_every_pod_gets_every_partition_count_as_its_variable():
    deployment = (CHART / "templates/deployment.yaml").read_text()
    assert 'PARTITIONS_{{ include "tgworkers.envName" $queue }}' in deployment
    helpers = (CHART / "templates/_helpers.tpl").read_text()
    assert '. | replace "." "_" | replace "-" "_" | upper' in helpers  # Processor.env_name


# -- README -------------------------------------------------------------------------


def leaf_paths(node: Any, prefix: str = "") -> list[str]:
    whole = ("env.", "resources.", "podSecurityContext.", "securityContext.", "dashboards.labels.")
    if isinstance(node, dict) and node and prefix not in whole:
        return [p for k, v in node.items() for p in leaf_paths(v, f"{prefix}{k}.")]
    return [prefix.rstrip(".")]


def test_chart_readme_has_a_values_table_row_per_key_and_the_helm_commands():
    readme = (CHART / "README.md").read_text()
    rows = set(re.findall(r"^\| `([\w.\[\]]+)` \|", readme, re.MULTILINE))
    group = SCHEMA["properties"]["groups"]["items"]["properties"]
    group_rows = [f"groups[].{k}" for k in group if k != "autoscaling"]
    group_rows += [f"groups[].autoscaling.{k}" for k in group["autoscaling"]["properties"]]
    missing = [p for p in [*leaf_paths(VALUES), *group_rows] if p not in rows]
    assert not missing, missing
    assert "helm lint" in readme and "helm template" in readme
