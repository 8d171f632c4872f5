"""Integration (evaluation stage): the tiny DAG's tables, figures and the Snakemake report.

Uses the session's one tiny run (conftest.tiny_run) rather than running the DAG again.
"""

from __future__ import annotations

import pandas as pd
import pytest
from table_reference import check_tables

from conftest import TINY, snakemake
from wsss.config.load import load_config
from wsss.core import results

pytestmark = pytest.mark.slow

TABLES = ["miou.csv", "miou_per_class.csv", "boundary.csv", "confusion_ratio.csv"]
FIGURES = ["miou.png", "boundary.png", "confusion_ratio.png", "qualitative_pseudo.png", "qualitative_deeplab.png"]


def test_tables_cover_every_method_and_stage(tiny_run):
    config = load_config(TINY)
    methods = config["methods"]
    tables = tiny_run / "results" / "tables"
    miou = pd.read_csv(tables / "miou.csv")
    pseudo = miou[miou.stage == "pseudo"]
    assert sorted(pseudo.method) == sorted(methods)
    deeplab_rows = miou[miou.stage == "deeplab"]
    assert sorted(deeplab_rows.method) == sorted(config["deeplab"]["methods"])
    boundary = pd.read_csv(tables / "boundary.csv")
    assert set(boundary.stage) == set(config["evaluation"]["tables"]["boundary"])
    confusion = pd.read_csv(tables / "confusion_ratio.csv")
    pairs = {(p["target"], p["coincident"]) for p in config["evaluation"]["confusion_pairs"]}
    assert set(zip(confusion.target, confusion.coincident)) == pairs
    # every number of the tables, recomputed with numpy / scipy from the run's PNGs and ground truth
    checked = check_tables(tiny_run, config)
    assert checked == {"miou.csv": len(miou), "boundary.csv": len(boundary), "confusion_ratio.csv": len(confusion)}


def test_report_renders_tables_and_figures(tiny_run):
    out = tiny_run / "results" / "report.html"
    snakemake("--configfile", str(TINY), "--report", str(out), workdir=tiny_run)
    html = out.read_text(errors="replace")
    assert len(html) > 10_000
    for name in TABLES + FIGURES + ["losses.png"]:
        assert name in html, f"{name} missing from the report"


def test_boundary_table_plans_no_deeplab(tmp_path):
    """`snakemake results/tables/boundary.csv` from nothing builds only what that table needs."""
    proc = snakemake("-n", "results/tables/boundary.csv", "--configfile", str(TINY), workdir=tmp_path)
    assert "evaluate_boundary" in proc.stdout and "table_boundary" in proc.stdout
    for rule in ("train_segmentation", "infer_segmentation", "evaluate_miou", "evaluate_confusion_ratio"):
        assert rule not in proc.stdout, f"{rule} planned for the boundary table"


def test_readme_results_are_generated_from_the_csvs(tiny_run, tmp_path):
    from wsss_dev.readme import END, START, update_readme

    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{START}\nstale 99.99\n{END}\noutro\n")
    update_readme(readme, tiny_run / "results" / "tables")
    text = readme.read_text()
    assert "stale" not in text and text.startswith("intro") and text.endswith("outro\n")
    miou = pd.read_csv(tiny_run / results.path("table", table="miou"))
    eps_pseudo = miou[(miou.method == "eps") & (miou.stage == "pseudo")].mIoU.item()
    assert f"{eps_pseudo:g}" in text.split("pseudo-masks (train) |")[1].split("\n")[0]

