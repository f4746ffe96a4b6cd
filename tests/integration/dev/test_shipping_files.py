"""The files a newcomer and a deployer meet first: README commands, scripts, Docker, compose, Helm.

hadolint is not installable on these machines, so the Dockerfile rules that matter
are checked here by parsing it: multi-stage, a non-root USER, the exec-form
entrypoint, PORT exposed, a HEALTHCHECK on /healthz, and a .dockerignore.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.support.processes import ROOT

from tgworkers.devstack.fake_peers import __main__ as fake_main

README = (ROOT / "README.md").read_text()


def setup_commands() -> list[str]:
    """The commands of the README's set-up block (the first fenced block after its heading)."""
    section = README.split("## Set up", 1)[1]
    block = section.split("```bash", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.strip().splitlines()]


def test_readme_has_exactly_two_setup_commands_both_executable_scripts():
    commands = setup_commands()
    assert commands == ["./scripts/dev", "./scripts/test"]
    for command in commands:
        script = ROOT / command
        assert script.is_file() and os.access(script, os.X_OK), command
        subprocess.run(["bash", "-n", str(script)], check=True)


def test_scripts_dev_sets_up_then_runs_dev_with_its_arguments():
    text = (ROOT / "scripts/dev").read_text()
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    assert lines[-2:] == [
        "source scripts/setup-env",
        'exec "$VENV/bin/python" -m tgworkers dev "$@"',
    ]
    subprocess.run(["bash", "-n", str(ROOT / "scripts/setup-env")], check=True)


def test_dev_help_runs_from_the_package():
    done = subprocess.run(
        [sys.executable, "-m", "tgworkers", "dev", "--help"], cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        timeout=60, check=True,
    )  # fmt: skip
    assert "Ctrl-C stops everything it started" in " ".join(done.stdout.split())


# -- Dockerfile -------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    joined = re.sub(r"\\\n", " ", text)
    pairs = []
    for line in joined.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


def instructions(name: str) -> list[str]:
    return [rest for word, rest in dockerfile() if word == name]


def test_dockerfile_is_multi_stage_on_slim_python_and_runs_as_non_root():
    stages = instructions("FROM")
    assert len(stages) >= 2 and all("slim" in s for s in stages)
    assert any("--from=" in c for c in instructions("COPY"))
    users = instructions("USER")
    assert users, "no USER"
    assert users[-1].split(":")[0] not in ("root", "0")


def test_dockerfile_entrypoint_is_exec_form_run_with_port_and_healthz():
    assert json.loads(instructions("ENTRYPOINT")[-1]) == ["python", "-m", "tgworkers", "run"]
    assert instructions("EXPOSE") == ["8099"]
    assert any(e.startswith("PORT=") or "PORT=8099" in e for e in instructions("ENV"))
    (health,) = instructions("HEALTHCHECK")
    assert "/healthz" in health and "CMD" in health
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "tests"} <= set(ignored)


# -- compose and Helm -----------------------------------------------------------------


def load_yaml(path: str) -> Any:
    return yaml.safe_load((ROOT / path).read_text())


def test_compose_names_redis_with_aof_and_noeviction_workers_env_and_collector():
    services = load_yaml("compose.yaml")["services"]
    redis_cmd = " ".join(services["redis"]["command"])
    assert services["redis"]["image"].startswith("redis:")
    assert "--appendonly yes" in redis_cmd and "--maxmemory-policy noeviction" in redis_cmd
    env = services["workers"]["environment"]
    needed = {"REDIS_URL", "SERVICE_JWT_PRIVATE_JWK", "PORT", "OTEL_EXPORTER_OTLP_ENDPOINT"}
    assert needed <= set(env)
    peers = {"PAYHUB", "PLAYHUB", "CAMPAIGNS", "ESCROW", "DISCOVERY", "PRICE"}
    assert {f"SVC_{p}_URL" for p in peers} <= set(env)
    assert services["otel-collector"]["image"].startswith("otel/")
    assert (ROOT / "deploy/otel-collector.yaml").is_file()


def test_compose_peers_command_uses_flags_the_fake_peers_accept():
    peers = load_yaml("compose.yaml")["services"]["peers"]
    assert peers["entrypoint"][-1] == "tgworkers.devstack.fake_peers"
    source = Path(fake_main.__file__).read_text()
    for flag in (f for f in peers["command"] if f.startswith("--")):
        assert f'"{flag}"' in source, flag


@pytest.mark.parametrize("path", ["helm/tgworkers/Chart.yaml", "helm/tgworkers/values.yaml",
                                  "deploy/otel-collector.yaml"])  # fmt: skip
def test_yaml_files_parse(path):
    assert isinstance(load_yaml(path), dict)


def test_helm_chart_declares_groups_grace_and_pdb():
    chart = load_yaml("helm/tgworkers/Chart.yaml")
    values = load_yaml("helm/tgworkers/values.yaml")
    assert chart["apiVersion"] == "v2" and chart["name"] == "tgworkers"
    assert values["groups"] and all(g["processors"] for g in values["groups"])
    assert values["terminationGraceMarginSeconds"] >= 5  # added to SHUTDOWN_GRACE_S
    assert values["podDisruptionBudget"]["enabled"]


def test_compose_replicas_never_share_a_host_port():
    for name, service in load_yaml("compose.yaml")["services"].items():
        replicas = service.get("deploy", {}).get("replicas", 1)
        for port in service.get("ports", []):
            host, _, container = str(port).rpartition(":")
            if not host or replicas == 1:
                continue
            low, _, high = host.partition("-")
            assert high and int(high) - int(low) + 1 >= replicas, (name, port, replicas)
            assert container.isdigit()


# -- reproducible image ----------------------------------------------------------------


def locked(path: str) -> dict[str, list[str]]:
    """name -> hashes of each pin in a `uv pip compile --generate-hashes` lock file."""
    pins: dict[str, list[str]] = {}
    name = ""
    for line in (ROOT / path).read_text().splitlines():
        if m := re.match(r"^([A-Za-z0-9_.-]+)==\S+", line):
            name = m.group(1).lower().replace("_", "-")
            pins[name] = []
        elif m := re.search(r"--hash=sha256:([0-9a-f]{64})", line):
            pins[name].append(m.group(1))
    return pins


def test_image_installs_every_runtime_dependency_from_a_hashed_lock():
    pins = locked("requirements.lock")
    assert pins and all(pins.values()), "every pin carries its hashes"
    deps = load_pyproject()["project"]["dependencies"]
    names = {re.split(r"[\[<>=;~! ]", d, maxsplit=1)[0].lower().replace("_", "-") for d in deps}
    assert names <= set(pins), names - set(pins)
    runs = " ".join(instructions("RUN"))
    assert "--require-hashes --only-binary=:all: -r requirements.lock" in runs
    assert "--require-hashes -r requirements-build.lock" in runs
    assert "--no-deps" in runs and "--no-build-isolation" in runs  # nothing resolved unpinned
    assert {"setuptools", "wheel"} <= set(locked("requirements-build.lock"))


def load_pyproject() -> Any:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())
