"""The workflow deployed as a Snakemake module, as `snakedeploy deploy-workflow` deploys it (README,
"Use as a module"): a Snakefile with a `module` pointing at this repository's workflow/Snakefile and
`use rule * from`, config/ and profiles/ copied beside it, in a folder outside the repository.

Every path the workflow reads from its own tree must then come from its own location: with
workflow.basedir (the deploying workflow's folder) the plan fails on the schema at once.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, TINY

pytestmark = pytest.mark.slow

# What snakedeploy's template (use_module.smk.jinja) writes, with the module's Snakefile as a path:
# github("<owner>/eps-workflow", path="workflow/Snakefile", tag=...) for a remote deploy.
MODULE_SNAKEFILE = """from snakemake.utils import min_version


min_version("6.10.0")


configfile: "config/config.yaml"


# declare {repo} as a module
module eps_workflow:
    snakefile:
        "{snakefile}"
    config:
        config


# use all rules from {repo}
use rule * from eps_workflow
"""


def deploy(dest: Path, config: Path, repo: Path = REPO) -> Path:
    """A deployment of `repo` as snakedeploy lays it out, with `config` as its config/config.yaml."""
    (dest / "workflow").mkdir(parents=True)
    (dest / "workflow" / "Snakefile").write_text(
        MODULE_SNAKEFILE.format(repo=repo, snakefile=repo / "workflow" / "Snakefile"))
    shutil.copytree(repo / "config", dest / "config")
    shutil.copytree(repo / "profiles", dest / "profiles")
    shutil.copy(config, dest / "config" / "config.yaml")
    return dest


def run(dest: Path, *args: str) -> subprocess.CompletedProcess:
    """snakemake as a user types it in the deployment (no -s, no --directory); PYTHONPATH unset, so
    the package comes from where the module's Snakefile puts it."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["OMP_NUM_THREADS"] = "1"
    return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=dest, capture_output=True, text=True,
                          timeout=1800, env=env)


def test_module_runs_the_tiny_config_to_miou_from_another_folder(tmp_path, tiny_run):
    dest = deploy(tmp_path / "deployed", TINY)
    assert not dest.resolve().is_relative_to(REPO.resolve())
    proc = run(dest, "results/tables/miou.csv", "--cores", "2", "--resources", "gpu=1")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    # the same numbers as the workflow run directly on the same config (CPU runs are deterministic)
    assert (dest / "results/tables/miou.csv").read_text() == (tiny_run / "results/tables/miou.csv").read_text()
    # the rules ran the module's own scripts, with the module's report captions, from its folder
    report = dest / "report.html"
    proc = run(dest, "results/tables/miou.csv", "--report", str(report))  # the report of what ran
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    html = report.read_text(errors="replace")
    assert "Segmentation quality per pseudo-mask source" in html  # workflow/report/miou.rst, the caption
    assert "eps-workflow reproduces" in html  # workflow/report/workflow.rst, the module's front page
