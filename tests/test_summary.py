"""`make run` ends with its result and touches no tracked file; README's result blocks are generated
from CSVs kept in docs/results/ (`make readme`), never by a run."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from conftest import REPO, snakemake
from wsss.core import results
from wsss.stages.summary import summary, wall_time
from wsss_dev.readme import BLOCKS, MACHINE, keep, results_block

ROWS = [("cam", "pseudo", 60.01), ("cam_sal", "pseudo", 66.85), ("eps", "pseudo", 75.84),
        ("cam", "pseudo_crf", 68.21), ("cam_sal", "pseudo_crf", 70.5), ("eps", "pseudo_crf", 88.12),
        ("cam", "deeplab", 59.83), ("eps", "deeplab", 74.97), ("gt", "deeplab", 80.24),
        ("cam", "deeplab_crf", 62.74), ("eps", "deeplab_crf", 83.44), ("gt", "deeplab_crf", 85.3)]


def _tables(folder):
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame([{"method": m, "stage": s, "mIoU": v} for m, s, v in ROWS]).to_csv(folder / "miou.csv", index=False)
    return folder


def test_wall_time_reads_like_the_readme():
    assert [wall_time(s) for s in (59, 246, 3725.4)] == ["59 s", "4 min 6 s", "1 h 2 min 5 s"]


def test_summary_is_eps_against_cam_from_the_csv(tmp_path):
    tables = _tables(tmp_path / "results" / "tables")
    (tmp_path / "results" / "report.html").write_text("<html/>")
    text = summary(tables, tmp_path / "results" / "report.html", 246)
    lines = text.splitlines()
    assert lines[3:8] == [
        "  mIoU (%)                         CAM     EPS  EPS - CAM  ground truth",
        "  pseudo-mask (train)            60.01   75.84     +15.83",
        "  pseudo-mask + CRF (train)      68.21   88.12     +19.91",
        "  DeepLab (val)                  59.83   74.97     +15.14         80.24",
        "  DeepLab + CRF (val)            62.74   83.44     +20.70         85.30"]
    assert lines[-2:] == ["Wall time: 4 min 6 s", f"Report: {(tmp_path / 'results' / 'report.html').resolve()}"]
    pd.DataFrame({"label": ["0.1", "0.2"], "mIoU": [74.19, 76.05], "configured": [False, True]}).to_csv(
        tables / "ablation_tau.csv", index=False)
    assert "  ablation_tau: 0.1 74.19, [0.2 76.05]" in summary(tables).splitlines()


def test_make_run_ends_with_the_summary(tmp_path):
    """The Makefile's run recipe (Snakemake stubbed by `true`: the DAG is test_workflow's) prints the
    summary of the run's CSVs and its wall time."""
    shutil.copy(REPO / "Makefile", tmp_path / "Makefile")
    _tables(tmp_path / "results" / "tables")
    (tmp_path / "results" / "report.html").write_text("<html/>")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(["make", "-s", "run", "STAMP=", "SNAKEMAKE=true", f"PY={sys.executable}"], cwd=tmp_path,
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    assert "  DeepLab (val)                  59.83   74.97     +15.14         80.24" in out
    assert re.fullmatch(r"Wall time: \d+ s", out[-2]) and out[-1] == f"Report: {tmp_path / 'results/report.html'}"
    assert "README" not in (REPO / "Makefile").read_text().split("\nrun:")[1].split("\n\n")[0]


def test_make_run_writes_only_paths_git_ignores(tmp_path):
    """Every file the default DAG plans (outputs, logs, benchmarks) and the report lie under a path
    .gitignore lists, so a first `make run` leaves `git status` clean."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs git and a git checkout")
    plan = snakemake("-n", "--cores", "2", workdir=tmp_path).stdout
    paths = {p.strip() for line in re.findall(r"^\s+(?:output|log|benchmark): (.*)$", plan, re.M)
             for p in line.split(",")}
    assert {results.path("table", table="miou"), "resources/synthetic/prepared",
            "logs/train_classifier/eps.log"} <= paths
    paths |= {"results/report.html", ".snakemake/metadata/x"}
    proc = subprocess.run(["git", "check-ignore", "--no-index", "--verbose", "--non-matching", *sorted(paths)],
                          cwd=REPO, capture_output=True, text=True)
    tracked = [line.split("\t")[1] for line in proc.stdout.splitlines() if line.startswith("::")]
    assert tracked == [], f"make run would write tracked paths: {tracked}"


def test_keep_copies_a_runs_csvs_with_its_machine(tmp_path):
    tables = _tables(tmp_path / "tables")
    pd.DataFrame({"method": ["cam"], "stage": ["pseudo"], "tolerance_px": [1], "F1": [41.32]}).to_csv(
        tables / "boundary.csv", index=False)
    assert keep(tables, tmp_path / "kept" / "default") == ["miou.csv", "boundary.csv"]
    kept = tmp_path / "kept" / "default"
    assert sorted(p.name for p in kept.iterdir()) == ["boundary.csv", "machine.csv", "miou.csv"]
    pd.DataFrame([{"cpu": "Test CPU (x86_64, AVX2)", "python": "3.11.0"}]).to_csv(kept / MACHINE, index=False)
    block = results_block(kept)
    assert block.endswith("on Test CPU (x86_64, AVX2), Python 3.11.0, kept in `docs/results/default/`.")
    assert "| pseudo-masks + CRF (train) | 68.21 | 70.5 | 88.12 |  |" in block


@pytest.mark.parametrize("block, kept", [("results", "default"), ("ablations", "ablations")])
def test_the_readme_blocks_are_what_the_kept_csvs_generate(block, kept):
    """README's results and ablations blocks are generated from the CSVs kept in docs/results/
    (`make readme`): regenerating them changes nothing."""
    text = (REPO / "README.md").read_text()
    quoted = text.split(f"<!-- {block}:start -->\n", 1)[1].split(f"\n<!-- {block}:end -->", 1)[0]
    assert quoted == BLOCKS[block](REPO / "docs" / "results" / kept)
