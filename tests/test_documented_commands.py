"""Every `snakemake` command that README.md and docs/*.md give in a bash block plans as typed.

Each command is dry-run (`--dry-run` added after the executable, nothing else changed) from the root
of a copy of the repository (workflow/, config/, profiles/, envs/, src/), so that relative paths,
profiles/default and the default config resolve as they do for a user, and nothing is written into
the checkout. A dry run plans downloads without doing them; no documented command needs a file
placed by hand today (a weights file a plan reads is a `weights.files` entry, so it is planned).
A block that deploys the workflow with `snakedeploy` (README, "Use as a module") types its `snakemake`
commands in the deployment: they run in a folder deployed as snakedeploy does (tests/test_module.py).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
COPIED = ("workflow", "config", "profiles", "envs", "src")
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.S | re.M)


def _deploying_block(where: str, root: Path = REPO) -> bool:
    """Whether the bash block holding the command at `where` ("<doc>:<line>") runs snakedeploy."""
    doc, line = where.rsplit(":", 1)
    text = (root / doc).read_text()
    for block in FENCE.finditer(text):
        first = text.count("\n", 0, block.start(2)) + 1
        if first <= int(line) < first + block.group(2).count("\n") + 1:
            return "snakedeploy deploy-workflow" in block.group(2)
    return False


def documented_commands(docs: list[Path] = DOCS, root: Path = REPO) -> list[tuple[str, str]]:
    """(where, command) for each `snakemake` command line of the docs' bash blocks; `where` is
    "<doc>:<line>". Backslash continuations are joined; comments stay (shlex drops them)."""
    found = []
    for doc in docs:
        text = doc.read_text()
        for block in FENCE.finditer(text):
            if block.group(1) not in ("bash", "sh", "shell", "console"):
                continue
            first_line = text.count("\n", 0, block.start(2)) + 1
            logical, start = "", None
            for offset, line in enumerate(block.group(2).splitlines()):
                start = first_line + offset if start is None else start
                if line.rstrip().endswith("\\"):
                    logical += line.rstrip()[:-1] + " "
                    continue
                logical += line
                words = shlex.split(logical, comments=True)
                if words and Path(words[0]).name == "snakemake":
                    found.append((f"{doc.relative_to(root)}:{start}", logical.strip()))
                logical, start = "", None
    return found


COMMANDS = documented_commands()
# the commands of a block that deploys the workflow first (snakedeploy is not a snakemake command)
DEPLOYED = {where for where, _ in COMMANDS if _deploying_block(where)}


def test_the_docs_give_snakemake_commands():
    """The extraction finds the commands the README shows (a broken parser must not pass vacuously)."""
    where = [w for w, _ in COMMANDS]
    assert len(COMMANDS) >= 7 and any(w.startswith("docs/slurm.md:") for w in where)
    assert any("results/tables/boundary.csv" in c and "voc12.yaml" in c for _, c in COMMANDS)
    assert any(c.endswith("--config shards=8") for _, c in COMMANDS)  # a continued line, joined


def test_a_target_after_configfile_is_found_and_fails(checkout):
    """The mistake the docs once made: `--configfile FILE TARGET` reads TARGET as a config file."""
    (checkout / "bad.md").write_text("```bash\n.venv/bin/snakemake --configfile config/voc12.yaml "
                                     "results/tables/boundary.csv   # just one table\n```\n")
    ((where, command),) = documented_commands([checkout / "bad.md"], checkout)
    assert where == "bad.md:2"
    proc = dry_run(command, checkout)
    assert proc.returncode != 0
    assert "No such file or directory: 'results/tables/boundary.csv'" in proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """A copy of the repository's root, where the commands run as a user types them."""
    root = tmp_path_factory.mktemp("checkout")
    for name in COPIED:
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return root


_PLANS: dict[tuple[str, Path], subprocess.CompletedProcess] = {}


def dry_run(command: str, root: Path) -> subprocess.CompletedProcess:
    """The command as typed, with --dry-run after the executable, run from `root` (cached)."""
    if (command, root) not in _PLANS:
        words = shlex.split(command, comments=True)
        argv = [sys.executable, "-m", "snakemake", "--dry-run", *words[1:]]
        env = dict(os.environ, OMP_NUM_THREADS="1")
        _PLANS[command, root] = subprocess.run(argv, cwd=root, capture_output=True, text=True, timeout=600, env=env)
    return _PLANS[command, root]


def job_counts(stdout: str) -> dict[str, int]:
    """{rule: jobs} from the plan's "Job stats" table."""
    table = stdout.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m.group(1) != "total"}


def targets(command: str) -> list[str]:
    """The targets of a command, as Snakemake's own argument parser reads them."""
    from snakemake.cli import get_argument_parser

    return get_argument_parser().parse_args(shlex.split(command, comments=True)[1:]).targets


@pytest.fixture(scope="module")
def deployment(checkout, tmp_path_factory) -> Path:
    """The checkout's workflow deployed as a module, as snakedeploy does, with the default config."""
    from test_module import deploy

    return deploy(tmp_path_factory.mktemp("deployed") / "my-eps", checkout / "config" / "config.yaml",
                  repo=checkout)


@pytest.mark.parametrize("where, command", COMMANDS, ids=[w for w, _ in COMMANDS])
def test_documented_command_plans_as_typed(where, command, checkout, request):
    proc = dry_run(command, request.getfixturevalue("deployment") if where in DEPLOYED else checkout)
    assert proc.returncode == 0, f"{where}: `{command}` does not plan:\n{(proc.stdout + proc.stderr)[-3000:]}"
    assert "This was a dry-run" in proc.stdout
    counts = job_counts(proc.stdout)
    for target in targets(command):
        if "/" in target:  # a file: some planned job writes it
            assert re.search(rf"^\s+output: .*\b{re.escape(target)}\b", proc.stdout, re.M), f"{where}: {target}"
        else:  # a rule
            assert counts.get(target) == 1, f"{where}: rule {target} not planned"


def test_the_paper_setting_plans_the_confusion_ratio_table_with_its_downloads(checkout):
    """With voc12.yaml, `rule all` includes confusion_ratio.csv: PASCAL-Context is fetched by its
    own rules (checksums published, so nothing asks for them)."""
    (command,) = [c for _, c in COMMANDS if c.split()[1:] == "--cores 8 --resources gpu=1 --configfile "
                  "config/voc12.yaml".split()]
    proc = dry_run(command, checkout)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    counts = job_counts(proc.stdout)
    for rule in ("download_context", "prepare_context", "table_confusion_ratio", "figure_table"):
        assert counts.get(rule), rule
    assert counts["evaluate_confusion_ratio"] == 6  # pseudo, pseudo_crf x cam, cam_sal, eps
    assert re.search(r"rule download_context:\n\s+output: resources/downloads/59_context_labels.tar.gz, "
                     r"resources/downloads/59_labels.txt", proc.stdout)
    assert re.search(r"^\s+output: results/tables/confusion_ratio.csv$", proc.stdout, re.M)
