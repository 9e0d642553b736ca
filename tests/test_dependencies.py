"""Every machine installs the same versions: each dependency pyproject.toml names (the dev extra included) is pinned
exactly in constraints.txt, within pyproject's range, and `make install` and the Docker image install with it."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        assert sep and version.strip(), f"not an exact pin: {line!r}"
        pins[canonicalize_name(name)] = version.strip()
    return pins


def test_every_dependency_is_pinned_within_its_range() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(r) for r in [*project["dependencies"], *project["optional-dependencies"]["dev"]]]
    pins = _pins()
    unpinned = [r.name for r in wanted if canonicalize_name(r.name) not in pins]
    assert not unpinned, f"add them to constraints.txt (make lock): {unpinned}"
    outside = [f"{r.name}=={pins[canonicalize_name(r.name)]} (wants {r.specifier})" for r in wanted
               if not r.specifier.contains(pins[canonicalize_name(r.name)], prereleases=True)]
    assert not outside, f"pinned outside pyproject.toml's range: {outside}"


def test_the_installs_use_the_pins() -> None:
    assert "pip install --quiet -c constraints.txt -e '.[dev]'" in (ROOT / "Makefile").read_text()
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "COPY pyproject.toml constraints.txt" in dockerfile and "pip wheel -c constraints.txt" in dockerfile
