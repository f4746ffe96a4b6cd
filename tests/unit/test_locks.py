"""The lock files agree with pyproject.toml and with each other.

The image installs requirements.lock, the tests and `dev` install requirements-dev.lock:
if the two pinned a package differently, CI would prove one set of versions and the
image would ship another. Both are written by ./scripts/lock; these tests catch a hand
edit of one, or a pyproject change without a re-lock.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^ ;\\]+)", re.MULTILINE)


def pins(lock: str) -> dict[str, str]:
    text = (ROOT / lock).read_text()
    return {canonicalize_name(name): ver for name, ver in PIN.findall(text)}


def declared(*extras: str) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in extras:
        reqs += [Requirement(r) for r in project["optional-dependencies"][extra]]
    return reqs


def test_the_image_and_the_tests_pin_the_same_versions() -> None:
    image, dev = pins("requirements.lock"), pins("requirements-dev.lock")
    differ = {name: (ver, dev.get(name)) for name, ver in image.items() if dev.get(name) != ver}
    assert not differ, f"requirements.lock and requirements-dev.lock disagree: {differ}"


def test_every_lock_pins_with_hashes() -> None:
    for lock in ("requirements.lock", "requirements-build.lock", "requirements-dev.lock"):
        text = (ROOT / lock).read_text()
        blocks = [b for b in re.split(r"\n(?=\S)", text) if PIN.match(b)]
        unhashed = [b.split()[0] for b in blocks if "--hash=sha256:" not in b]
        assert blocks, f"{lock} pins nothing"
        assert not unhashed, f"{lock} pins without a hash: {unhashed}"


def test_every_declared_dependency_is_pinned_within_its_range() -> None:
    dev = pins("requirements-dev.lock")
    for req in declared("dev"):
        if req.marker is not None and not req.marker.evaluate():
            continue
        name = canonicalize_name(req.name)
        assert name in dev, f"{req} is declared in pyproject.toml but not locked: ./scripts/lock"
        assert req.specifier.contains(dev[name], prereleases=True), (
            f"requirements-dev.lock pins {name}=={dev[name]}, outside {req}: ./scripts/lock"
        )
