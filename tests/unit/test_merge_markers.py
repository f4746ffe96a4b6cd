"""No tracked file holds a merge's conflict markers.

A merge resolved in code but not in prose (docs/*.md) passes every other check and ships
`<<<<<<< HEAD` to readers; it happened once in this project.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MARKER = re.compile(r"^(<{7}|>{7})( |$)|^={7}$", re.MULTILINE)


def tracked_text_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    return [ROOT / name.decode() for name in listed if name and (ROOT / name.decode()).is_file()]


def markers_in(text: str) -> list[int]:
    return [text.count("\n", 0, m.start()) + 1 for m in MARKER.finditer(text)]


def test_no_tracked_file_holds_conflict_markers() -> None:
    found = {}
    for path in tracked_text_files():
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue  # images, wheels' hashes and such
        if lines := markers_in(text):
            found[str(path.relative_to(ROOT))] = lines
    assert not found, f"conflict markers (file: lines): {found}"


def test_the_check_finds_each_marker() -> None:
    text = "a\n<<<<<<< HEAD\nb\n=======\nc\n>>>>>>> branch\n======= not a marker\n"
    assert markers_in(text) == [2, 4, 6]
