"""The chart through the real `helm`, and every manifest it renders against a schema.

`helm` comes from requirements-tools.lock (scripts/tools extracts it into the venv). Kubernetes'
own kinds are validated by kubernetes-validate for `K8S_VERSION` in strict mode (an unknown field
is an error, as `kubectl apply`'s server-side field validation makes it); the custom resources
(KEDA, prometheus-operator) against the CRD schemas in crds/ (crds/README.md), made strict the
same way. A rendered kind with neither schema is an error, never a pass.
"""

from __future__ import annotations

import functools
import json
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.support.processes import ROOT

CHART = ROOT / "helm/tgworkers"
EXAMPLES = sorted((CHART / "examples").glob("*.yaml"))
CRDS = Path(__file__).parent / "crds"
# The oldest Kubernetes the chart is checked against: helm renders with this version's
# capabilities and kubernetes-validate uses its schemas (1.33's API: autoscaling/v2,
# policy/v1 PodDisruptionBudget, apps/v1).
K8S_VERSION = "1.33"


def helm_binary() -> str:
    """The venv's helm (scripts/tools), else one on PATH; skips where none can be installed."""
    found = shutil.which("helm", path=str(Path(sys.executable).parent)) or shutil.which("helm")
    if found:
        return found
    if (platform.system(), platform.machine()) != ("Linux", "x86_64"):
        pytest.skip("helm: requirements-tools.lock carries linux x86_64 binaries only")
    pytest.fail("helm is missing: run ./scripts/tools (scripts/setup-env runs it)")


def helm(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run helm; the caller checks returncode and reads stdout/stderr."""
    return subprocess.run(
        [helm_binary(), *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )


def values_args(values: list[Path] | None = None, sets: dict[str, Any] | None = None) -> list[str]:
    args: list[str] = []
    for f in values or []:
        args += ["-f", str(f)]
    for key, value in (sets or {}).items():
        args += ["--set-json", f"{key}={json.dumps(value)}"]
    return args


def render(
    chart: Path = CHART, values: list[Path] | None = None, sets: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """`helm template` -> the manifests (fails the test with helm's message if it refuses)."""
    out = helm(
        "template", "t", chart, "--namespace", "jobs", "--kube-version", f"{K8S_VERSION}.0",
        *values_args(values, sets),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def strict(schema: Any) -> Any:
    """A CRD schema as the API server's strict field validation applies it: unknown keys refused."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@functools.cache
def crd_validator(kind: str, api_version: str) -> jsonschema.Draft7Validator | None:
    """The validator of crds/<kind>.<group>-<version>.yaml, None when there is no such file."""
    group, _, version = api_version.rpartition("/")
    path = CRDS / f"{kind.lower()}.{group}-{version}.yaml"
    if not path.exists():
        return None
    schema = strict(yaml.safe_load(path.read_text()))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def validate(doc: dict[str, Any]) -> None:
    """Raise jsonschema.ValidationError (or LookupError: no schema) for a manifest."""
    kind, api_version = doc["kind"], doc["apiVersion"]
    validator = crd_validator(kind, api_version)
    if validator is not None:
        validator.validate(doc)
        return
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError as e:
        raise LookupError(f"no schema for {kind} {api_version}: {e.message}") from e
