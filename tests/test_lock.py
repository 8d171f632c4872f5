"""requirements/lock.txt: the environment is exactly the lock, and the lock agrees with the pins.

The lock (written by `make lock`, installed by `make venv` with `pip install --require-hashes`)
holds every package of the environment: pyproject.toml's dependencies and its `test` extra, their
transitive dependencies, and pip/setuptools/wheel (requirements/build.in). Checked here:

1. the running environment has every locked package at exactly the locked version, and no
   distribution that the lock does not name except the project itself (wsss, installed with
   --no-deps -e .); pip, setuptools and wheel are locked too, so they are held to it like the rest;
2. every pin in pyproject.toml (dependencies + the `test` extra) is in the lock at the same version,
   and the lock satisfies [build-system] requires;
3. every pin in envs/wsss.yaml (the conda env the rules declare) agrees with the lock and pyproject;
4. every locked package has an exact version and at least one sha256 hash.
"""

from __future__ import annotations

import importlib.metadata
import platform
import re
import sys
import tomllib

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

from conftest import REPO

LOCK = REPO / "requirements" / "lock.txt"
PYPROJECT = REPO / "pyproject.toml"
CONDA_ENV = REPO / "envs" / "wsss.yaml"
PROJECT = "wsss"
FIX = "run `make venv` (after `rm .venv/.installed`), or recreate .venv: `rm -rf .venv && make venv`"


def norm(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_lock() -> dict[str, tuple[str, list[str]]]:
    """name -> (version, sha256 hashes) for every entry of the lock."""
    entries: dict[str, tuple[str, list[str]]] = {}
    current = None
    for line in LOCK.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():
            m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+?)(\s*\\)?", line.strip())
            assert m, f"lock line is not an exact pin: {line!r}"
            current = norm(m.group(1))
            assert current not in entries, f"{current} is locked twice"
            entries[current] = (m.group(2), [])
        else:
            entries[current][1].extend(re.findall(r"--hash=sha256:([0-9a-f]{64})", line))
    return entries


LOCKED = parse_lock()


def pyproject_pins() -> list[Requirement]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    return [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]]


def exact(req: Requirement) -> str:
    specs = list(req.specifier)
    assert len(specs) == 1 and specs[0].operator == "==", f"pyproject.toml: {req} is not pinned with =="
    return specs[0].version


def test_lock_entries_are_exact_and_hashed():
    assert len(LOCKED) > 50, "the lock looks truncated"
    for name, (version, hashes) in LOCKED.items():
        Version(version)  # a real version, no range
        assert hashes, f"{name}=={version} has no --hash"
    for tool in ("pip", "setuptools", "wheel"):
        assert tool in LOCKED, f"{tool} is missing from the lock (requirements/build.in)"


@pytest.mark.skipif(not (sys.platform == "linux" and platform.machine() == "x86_64"
                         and sys.version_info[:2] == (3, 11)),
                    reason="the lock's scope is CPython 3.11 on Linux x86_64")
def test_environment_is_exactly_the_lock():
    installed: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:  # the first one on sys.path wins, as for imports
            installed.setdefault(norm(name), dist.version)
    wrong = {n: (v, installed.get(n)) for n, (v, _) in LOCKED.items() if installed.get(n) != v}
    assert not wrong, ("installed versions differ from requirements/lock.txt (name: (locked, installed)): "
                       f"{wrong}; {FIX}")
    extra = sorted(set(installed) - set(LOCKED) - {PROJECT})
    assert not extra, (f"installed but not in requirements/lock.txt: {extra}; add them to pyproject.toml and "
                       f"run `make lock`, or uninstall them")


def test_pyproject_pins_are_locked():
    for req in pyproject_pins():
        name = norm(req.name)
        assert name in LOCKED, f"pyproject.toml pins {req} but the lock lacks it: run `make lock`"
        assert LOCKED[name][0] == exact(req), (
            f"pyproject.toml pins {req}, the lock has {LOCKED[name][0]}: run `make lock`")
    for req in map(Requirement, tomllib.loads(PYPROJECT.read_text())["build-system"]["requires"]):
        name = norm(req.name)
        assert name in LOCKED and req.specifier.contains(LOCKED[name][0]), (
            f"[build-system] requires {req}, the lock has {LOCKED.get(name)}")


def test_conda_env_pins_agree():
    env = yaml.safe_load(CONDA_ENV.read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    assert "python=3.11" in conda, "envs/wsss.yaml: the lock is for Python 3.11"
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    pinned = {norm(r.name): exact(r) for r in pyproject_pins()}
    reqs = [Requirement(line) for line in pip if not line.startswith("-")]
    assert reqs, "envs/wsss.yaml pins nothing"
    for req in reqs:
        name = norm(req.name)
        assert name in LOCKED and LOCKED[name][0] == exact(req), (
            f"envs/wsss.yaml pins {req}, the lock has {LOCKED.get(name, ('nothing',))[0]}")
        assert pinned.get(name) == exact(req), f"envs/wsss.yaml pins {req}, pyproject.toml {pinned.get(name)}"
