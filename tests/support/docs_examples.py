"""Docs code blocks that are files the suite runs: each block names its source.

A fenced block in a checked page must follow a marker line naming what it shows:

    <!-- example: tgworkers/testing/example/bonus.py -->               the whole file
    <!-- example: tgworkers/testing/example/test_bonus.py::a,b -->     top-level a and b
    <!-- example: ...::imports,a -->      the file's imports (one block), then a

`python -m tests.support.docs_examples` rewrites the blocks from their files;
tests/unit/test_docs_examples.py fails when a block and its file differ.
"""

from __future__ import annotations

import ast
import itertools
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGES = ("docs/testing.md", "docs/producers.md")
MARKER = re.compile(r"^<!-- example: (?P<path>[^ :]+)(?:::(?P<names>[\w,]+))? -->$")
FENCE = re.compile(r"^```")


def source_of(path: str, names: str | None) -> str:
    """The text a marker names: the file, or its top-level definitions in the order given."""
    text = (ROOT / path).read_text(encoding="utf-8")
    if names is None:
        return text.rstrip("\n")
    lines = text.splitlines()
    tree = ast.parse(text).body
    imports = [n for n in tree if isinstance(n, ast.Import | ast.ImportFrom)]
    defs: dict[str, str] = {}
    if imports:  # from the first import to the last, with the blank lines between groups
        defs["imports"] = "\n".join(lines[imports[0].lineno - 1 : imports[-1].end_lineno])
    consts = {
        t.id
        for n in tree
        if isinstance(n, ast.Assign)
        for t in n.targets
        if isinstance(t, ast.Name)
    }
    for node in tree:
        first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
        for name in _names(node):
            defs[name] = "\n".join(lines[first - 1 : node.end_lineno])
    missing = [n for n in names.split(",") if n not in defs]
    if missing:
        raise LookupError(f"{path}: no top-level {missing}")
    wanted = names.split(",")
    out = defs[wanted[0]]
    for before, name in itertools.pairwise(wanted):
        out += _gap(before in consts, name in consts) + defs[name]
    return out


def _gap(after_const: bool, const: bool) -> str:
    """As the formatter spaces them: constants together, definitions two blank lines apart."""
    return "\n" if after_const and const else "\n\n" if const else "\n\n\n"


def _names(node: ast.stmt) -> list[str]:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [node.name]
    if isinstance(node, ast.Assign):
        return [t.id for t in node.targets if isinstance(t, ast.Name)]
    return []


def blocks(page: str) -> list[tuple[int, str | None, str]]:
    """Each fenced block of `page`: its line, the marker before it (or None), its text."""
    lines = (ROOT / page).read_text(encoding="utf-8").splitlines()
    found, i = [], 0
    while i < len(lines):
        if FENCE.match(lines[i]):
            end = next(j for j in range(i + 1, len(lines)) if FENCE.match(lines[j]))
            marker = lines[i - 1] if i and MARKER.match(lines[i - 1]) else None
            found.append((i + 1, marker, "\n".join(lines[i + 1 : end])))
            i = end
        i += 1
    return found


def expected(marker: str) -> str:
    m = MARKER.match(marker)
    assert m is not None
    return source_of(m["path"], m["names"])


def rewrite(page: str) -> None:
    lines = (ROOT / page).read_text(encoding="utf-8").splitlines()
    out, i = [], 0
    while i < len(lines):
        out.append(lines[i])
        if FENCE.match(lines[i]) and i and MARKER.match(lines[i - 1]):
            end = next(j for j in range(i + 1, len(lines)) if FENCE.match(lines[j]))
            out.extend(expected(lines[i - 1]).splitlines())
            out.append(lines[end])
            i = end
        i += 1
    (ROOT / page).write_text("\n".join(out) + "\n", encoding="utf-8")


if __name__ == "__main__":
    for page in sys.argv[1:] or PAGES:
        rewrite(page)
