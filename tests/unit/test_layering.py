"""Import direction, checked on the AST of every module (STYLE.md §2.1).

jobs → engine (the package's public names), jobs → peers → engine; the engine never
imports jobs, peers, cli, http or devstack.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "tgworkers"
STDLIB = set(sys.stdlib_module_names)


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def modules(sub: str) -> list[Path]:
    return sorted((PACKAGE / sub).rglob("*.py"))


@pytest.mark.parametrize("path", modules("engine"), ids=lambda p: p.name)
def test_engine_never_imports_the_layers_above_it(path: Path) -> None:
    above = (
        "tgworkers.jobs",
        "tgworkers.peers",
        "tgworkers.cli",
        "tgworkers.http",
        "tgworkers.devstack",
        "tgworkers.testing",
        "tgworkers.producer",
    )
    bad = sorted(m for m in imports_of(path) if m.startswith(above))
    assert not bad, f"{path.name} imports {bad}"


JOB_ALLOWED = (
    "tgworkers.engine",
    "tgworkers.peers",
    "tgworkers.config",
    "tgworkers.jobs",
    "msgspec",
    "structlog",
)


@pytest.mark.parametrize("path", modules("jobs"), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_job_modules_import_only_the_engine_package_peers_and_msgspec(path: Path) -> None:
    bad = []
    for name in imports_of(path):
        top = name.split(".")[0]
        if top in STDLIB or top == "__future__":
            continue
        if name.startswith("tgworkers.engine.") and not name.startswith(
            "tgworkers.engine.telemetry"
        ):
            bad.append(name)  # internals: use `from tgworkers.engine import ...`
        elif not name.startswith(JOB_ALLOWED):
            bad.append(name)
    assert not bad, f"{path.name} imports {sorted(bad)}"


PEER_ALLOWED = (
    "tgworkers.engine", "tgworkers.peers", "tgworkers.errors", "tgworkers.secrets", "tgworkers",
    "httpx", "msgspec", "joserfc", "structlog", "opentelemetry",
)  # fmt: skip


@pytest.mark.parametrize("path", modules("peers"), ids=lambda p: p.name)
def test_peers_import_only_engine_signals_and_their_libraries(path: Path) -> None:
    bad = [
        n for n in imports_of(path)
        if n.split(".")[0] not in STDLIB and n != "__future__" and not n.startswith(PEER_ALLOWED)
    ]  # fmt: skip
    bad += [
        n for n in imports_of(path) if n.startswith(("tgworkers.jobs", "tgworkers.cli", "redis"))
    ]
    assert not bad, f"{path.name} imports {sorted(bad)}"
