"""Shared fixtures: the repository paths, a Snakemake runner, and one tiny run of the whole DAG."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "workflow" / "Snakefile"
TINY = REPO / "tests" / "config" / "tiny.yaml"


def snakemake(*args: str, workdir: Path, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run snakemake (the venv's) on the repository's workflow in `workdir`."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--directory", str(workdir), *args]
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n"
                             f"{proc.stderr[-8000:]}")
    return proc


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """The whole DAG on tests/config/tiny.yaml, run once per test session; returns its work dir."""
    workdir = tmp_path_factory.mktemp("tiny_run")
    snakemake("--cores", "2", "--resources", "gpu=1", "--configfile", str(TINY), workdir=workdir, timeout=1800)
    return workdir
