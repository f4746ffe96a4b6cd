"""A new project outside this repository installs tgworkers and runs the docs' example.

How it installs, fast and offline: a venv of its own (no pip of its own), whose
site-packages reads this repository's `.venv` site-packages after its own (a `.pth`
line: tgworkers' dependencies and pytest come from there, nothing is downloaded);
then `pip install --no-deps --no-index --no-build-isolation` of a copy of the
repository's package (a copy, so no build files land in the repository). The
project copies `bonus.py`, `test_bonus.py` and `pytest.ini` from the *installed*
package, changes the test's import to its own module as docs/testing.md says, and
runs pytest: the `tgw_*` fixtures come from the installed entry point.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE_IMPORT = "from tgworkers.testing.example.bonus import"


def run(*args: str | Path, cwd: Path, timeout: float = 300) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "TGW_"))}
    done = subprocess.run(
        [str(a) for a in args],
        check=False,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    assert done.returncode == 0, f"{args} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done.stdout


@pytest.fixture
def installed(tmp_path: Path) -> Path:
    """A venv with tgworkers installed from a copy of this repository; its python."""
    src = tmp_path / "src"
    shutil.copytree(ROOT / "tgworkers", src / "tgworkers",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    venv = tmp_path / "venv"
    run(sys.base_prefix + "/bin/python3", "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    site = run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=tmp_path)
    Path(site.strip(), "dev-env.pth").write_text(sysconfig.get_path("purelib") + "\n")
    run(python, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
        "--no-build-isolation", src, cwd=tmp_path)  # fmt: skip
    return python


def test_a_new_project_copies_the_example_and_its_tests_pass(installed: Path, tmp_path: Path):
    where = run(installed, "-c", "import tgworkers.testing.example as e; print(e.__path__[0])",
                cwd=tmp_path)  # fmt: skip
    example = Path(where.strip())
    assert example.is_relative_to(tmp_path / "venv"), f"tgworkers imported from {example}"
    project = tmp_path / "bonus-service"
    project.mkdir()
    for name in ("bonus.py", "pytest.ini"):
        shutil.copy(example / name, project / name)
    test = (example / "test_bonus.py").read_text()
    assert EXAMPLE_IMPORT in test
    (project / "test_bonus.py").write_text(test.replace(EXAMPLE_IMPORT, "from bonus import"))
    out = run(installed, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=project)
    assert "7 passed" in out, out
