"""Import direction, checked on the AST of every module (STYLE.md §2.1).

jobs → engine (the package's public names), jobs → peers → engine; the engine never
imports jobs, peers, cli, http or devstack.

The whole import graph of `tgworkers/` is built from the source, type-only
(`if TYPE_CHECKING:`) and function-level imports included: it has no cycle, and no
module imports a layer above its own (LAYERS, bottom first; docs/architecture.md).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
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
            "tgworkers.engine.telemetry.recorder"
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


# ------------------------------------------------------------------ the import graph

LAYERS: tuple[tuple[str, ...], ...] = (
    ("tgworkers", "tgworkers.errors", "tgworkers.secrets"),
    ("tgworkers.engine",),
    ("tgworkers.config", "tgworkers.peers", "tgworkers.logs"),
    ("tgworkers.jobs",),
    ("tgworkers.producer",),
    ("tgworkers.http",),
    ("tgworkers.bootstrap", "tgworkers.devstack"),
    ("tgworkers.cli", "tgworkers.__main__"),
    ("tgworkers.testing",),
)
"""Bottom first: a module may import its own layer and the layers below it."""

LAZY_REEXPORTS: dict[str, set[str]] = {"tgworkers": {"tgworkers.producer"}}
"""Edges left out of the graph: the package root offers `tgworkers.Producer` through a
module `__getattr__` (PEP 562), so `import tgworkers` loads nothing above the root;
`test_the_root_reexport_is_lazy` checks that it stays so."""

KNOWN_CYCLES: frozenset[frozenset[str]] = frozenset()
"""Cycles still to break, each named here so a new one fails at once (none left:
runtime ↔ recovery went with the RecoveryHost protocol of issue 13). Remove an entry
when its cycle is gone (the test fails until you do)."""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _owner(name: str) -> str | None:
    """The module of tgworkers that `name` (a module or a name in one) lives in."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imported(module: str, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = node.module or ""
    if node.level:  # relative: resolved against the importing module's package
        package = module.split(".")
        if MODULES[module].name != "__init__.py":
            package = package[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, *([node.module] if node.module else [])])
    for alias in node.names:  # `from pkg import mod` names the submodule
        full = f"{base}.{alias.name}"
        yield full if full in MODULES else base


def import_graph() -> dict[str, set[str]]:
    """module → the tgworkers modules it imports anywhere (top level, functions, TYPE_CHECKING)."""
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for name in _imported(module, node):
                    if name.split(".")[0] == "tgworkers" and (owner := _owner(name)):
                        edges.add(owner)
        edges.discard(module)
        graph[module] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: set[frozenset[str]] = set()

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = {stack.pop()}
            while v not in component:
                component.add(stack.pop())
            if len(component) > 1:
                found.add(frozenset(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def layer_of(module: str) -> int:
    best = max(
        (
            name
            for layer in LAYERS
            for name in layer
            if module == name or module.startswith(name + ".")
        ),
        key=len,
    )
    return next(i for i, layer in enumerate(LAYERS) if best in layer)


GRAPH = {m: targets - LAZY_REEXPORTS.get(m, set()) for m, targets in import_graph().items()}


def test_the_root_reexport_is_lazy() -> None:
    code = (
        "import sys, tgworkers; loaded = 'tgworkers.producer' in sys.modules; "
        "tgworkers.Producer; print(loaded, 'tgworkers.producer' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]


def test_the_graph_is_read_from_type_only_and_function_level_imports_too() -> None:
    # `telemetry` imports `retry` under `if TYPE_CHECKING:` only, and `cli.app` imports
    # the platform's jobs inside a function: both edges must reach the checks below.
    assert "tgworkers.engine.retry" in GRAPH["tgworkers.engine.telemetry.recorder"]
    assert "tgworkers.jobs" in GRAPH["tgworkers.cli.app"]
    assert {"tgworkers.engine", "tgworkers.cli"} <= set(MODULES)


def test_no_module_imports_a_layer_above_its_own() -> None:
    upward = sorted(
        f"{module} → {target}"
        for module, targets in GRAPH.items()
        for target in targets
        if layer_of(target) > layer_of(module)
    )
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_the_engine_imports_nothing_of_tgworkers_but_errors_and_secrets() -> None:
    outside = sorted(
        f"{module} → {target}"
        for module, targets in GRAPH.items()
        if module.startswith("tgworkers.engine")
        for target in targets
        if not target.startswith("tgworkers.engine")
        and target not in ("tgworkers.errors", "tgworkers.secrets")
    )
    assert not outside, "\n".join(outside)


def test_the_import_graph_has_no_cycle_but_the_known_ones() -> None:
    found = cycles(GRAPH)
    new = sorted(sorted(c) for c in found - KNOWN_CYCLES)
    assert not new, f"import cycles: {new}"
    gone = sorted(sorted(c) for c in KNOWN_CYCLES - found)
    assert not gone, f"cycles now broken, remove them from KNOWN_CYCLES: {gone}"


def test_the_cycle_finder_finds_a_cycle_through_a_type_only_import() -> None:
    """The checker itself can fail: a two-module loop is reported."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == {frozenset({"a", "b", "c"})}


# ------------------------------------------------------------------ inside the engine

ENGINE_ORDER: tuple[tuple[str, ...], ...] = (
    ("tgworkers.engine.wire",),
    tuple(
        f"tgworkers.engine.{m}"
        for m in (
            "outcome", "retry", "registry", "context", "enqueueing", "settings", "live",
            "options", "layout", "partitions", "jobspec",
        )
    ),
    ("tgworkers.engine.telemetry",),
    ("tgworkers.engine.client",),
    ("tgworkers.engine.schedule",),
    ("tgworkers.engine.ops",),
    ("tgworkers.engine.runtime",),
)  # fmt: skip
"""The engine's own order, bottom first (docs/architecture.md, "Inside the engine"): the
wire format; the job-facing model; telemetry; the client; schedules; the operator API;
the runtime. `tgworkers.engine` itself (the job authors' API) re-exports from any of them
and no engine module imports it."""

KNOWN_ENGINE_EXCEPTIONS: frozenset[tuple[str, str]] = frozenset()
"""Imports against ENGINE_ORDER still to remove, each named so a new one fails at once."""


def engine_rank(module: str) -> int | None:
    for rank, group in enumerate(ENGINE_ORDER):
        if any(module == g or module.startswith(g + ".") for g in group):
            return rank
    return None


ENGINE_MODULES = sorted(m for m in MODULES if m.startswith("tgworkers.engine."))


def test_every_engine_module_has_a_place_in_the_order() -> None:
    unplaced = [m for m in ENGINE_MODULES if engine_rank(m) is None]
    assert not unplaced, f"place these in ENGINE_ORDER (or a sub-package): {unplaced}"


def test_the_engines_top_level_stays_small() -> None:
    top = [m for m in ENGINE_MODULES if m.count(".") == 2 and MODULES[m].name != "__init__.py"]
    assert len(top) <= 12, f"{len(top)} modules at engine/'s top level: {top}"


def test_no_engine_module_imports_one_above_it_in_the_order() -> None:
    upward = sorted(
        (module, target)
        for module in ENGINE_MODULES
        for target in GRAPH[module]
        if target.startswith("tgworkers.engine.")
        and (rank := engine_rank(module)) is not None
        and (other := engine_rank(target)) is not None
        and other > rank
    )
    assert not set(upward) - KNOWN_ENGINE_EXCEPTIONS, "against the engine's order:\n" + "\n".join(
        f"{a} → {b}" for a, b in upward if (a, b) not in KNOWN_ENGINE_EXCEPTIONS
    )
    gone = KNOWN_ENGINE_EXCEPTIONS - set(upward)
    assert not gone, f"fixed, remove from KNOWN_ENGINE_EXCEPTIONS: {sorted(gone)}"
    assert not any("tgworkers.engine" in GRAPH[m] for m in ENGINE_MODULES), (
        "an engine module imports the job authors' facade `tgworkers.engine`"
    )


def test_each_engine_sub_package_says_what_it_is_for() -> None:
    for sub in ("wire", "telemetry", "schedule", "ops", "runtime"):
        doc = ast.get_docstring(ast.parse((PACKAGE / "engine" / sub / "__init__.py").read_text()))
        assert doc and len(doc) > 80, f"engine/{sub}/__init__.py needs a docstring saying why"


def test_the_order_check_catches_an_upward_import() -> None:
    """The checker can fail: the wire format importing the runtime is against the order."""
    assert engine_rank("tgworkers.engine.wire.keys") == 0
    assert engine_rank("tgworkers.engine.runtime.worker") == len(ENGINE_ORDER) - 1
    assert (engine_rank("tgworkers.engine.ops.dlq") or 0) > (
        engine_rank("tgworkers.engine.client") or 0
    )


# ------------------------------------------------------------------ the operator API

FRONT_ENDS = ("tgworkers.cli", "tgworkers.http", "tgworkers.testing")
"""Operator and test front ends: they use the job authors' API (`tgworkers.engine` and its
top-level modules), the operator API (`engine.ops`) and `engine.telemetry`, never the wire,
the schedules or the runtime (docs/architecture.md, "The operator API")."""

KNOWN_FRONT_END_EXCEPTIONS: dict[tuple[str, str], str] = {}
"""Front-end imports of engine internals, each with its reason; a new one fails at once,
and an entry no longer needed fails until it is removed. None left: the sampler and the
info publisher run in `bootstrap/http_upkeep.py`, `dev` and the testing harness read the
worker through narrow protocols and the operator API, and the harness's time shift and
queued-job listing are `engine/ops/timeline.py`'s."""


def front_end_may_import(target: str) -> bool:
    """The job authors' API, a top-level engine module, `engine.ops` or `engine.telemetry`."""
    if not target.startswith("tgworkers.engine"):
        return True
    path = MODULES.get(target)
    top_level = target.count(".") == 2 and path is not None and path.name != "__init__.py"
    return (
        target == "tgworkers.engine"
        or top_level
        or target.startswith(("tgworkers.engine.ops", "tgworkers.engine.telemetry"))
    )


def front_end_offences(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    return {
        (module, target)
        for module, targets in graph.items()
        if module.startswith(FRONT_ENDS)
        for target in targets
        if not front_end_may_import(target)
    }


def test_front_ends_use_only_the_job_api_ops_and_telemetry() -> None:
    found = front_end_offences(GRAPH)
    new = sorted(found - set(KNOWN_FRONT_END_EXCEPTIONS))
    assert not new, "engine internals imported by cli/http/testing (use engine.ops):\n" + "\n".join(
        f"{a} → {b}" for a, b in new
    )
    gone = sorted(set(KNOWN_FRONT_END_EXCEPTIONS) - found)
    assert not gone, f"no longer imported, remove from KNOWN_FRONT_END_EXCEPTIONS: {gone}"


def test_the_front_end_check_catches_an_internal_import() -> None:
    """The checker can fail: the console reading the wire's keys is refused, the API not."""
    graph = {
        "tgworkers.http.console.views": {
            "tgworkers.engine.wire.keys", "tgworkers.engine.ops.browse", "tgworkers.engine",
            "tgworkers.engine.layout", "tgworkers.engine.telemetry.recorder",
        },
        "tgworkers.cli.job": {"tgworkers.engine.runtime.worker", "tgworkers.engine.schedule"},
    }  # fmt: skip
    assert front_end_offences(graph) == {
        ("tgworkers.http.console.views", "tgworkers.engine.wire.keys"),
        ("tgworkers.cli.job", "tgworkers.engine.runtime.worker"),
        ("tgworkers.cli.job", "tgworkers.engine.schedule"),
    }


# --------------------------------------------------------------------------- environment

ENVIRONMENT_READERS = frozenset({"environ", "environb", "getenv", "getenvb"})


def reads_of_the_environment(source: str) -> list[str]:
    """`os.environ`, `os.getenv` (or either imported from `os`) in a module's source."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
            and node.attr in ENVIRONMENT_READERS
        ):
            found.append(f"line {node.lineno}: os.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            names = [a.name for a in node.names if a.name in ENVIRONMENT_READERS]
            found += [f"line {node.lineno}: from os import {name}" for name in names]
    return sorted(found)


@pytest.mark.parametrize("path", modules("engine"), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_the_engine_reads_no_environment(path: Path) -> None:
    """Settings reach the engine as values (config → launcher → engine), never from `os`.

    The config layer (`tgworkers.config`) is the one reader of the environment; a
    variable read inside the engine would escape validation, `docs/configuration.md`
    and hot reload's static/dynamic rules.
    """
    found = reads_of_the_environment(path.read_text())
    assert not found, f"{path.relative_to(PACKAGE)} reads the environment: {found}"


def test_the_environment_check_catches_each_form() -> None:
    source = "import os\nfrom os import getenv\nA = os.environ.get('X')\nB = os.getenv('Y')\n"
    assert reads_of_the_environment(source) == [
        "line 2: from os import getenv", "line 3: os.environ", "line 4: os.getenv",
    ]  # fmt: skip
