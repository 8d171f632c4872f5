"""The paper's ablations (wsss.stages.ablation, workflow/rules/ablation.smk): grid points, generated
saliency, the table and figure, the SLURM plan (one job per point) and a tiny end-to-end build."""

from __future__ import annotations

import json
import re
import time

import numpy as np
import pandas as pd
import pytest
from table_reference import folder_scores

from conftest import REPO, TINY, snakemake
from wsss.config.load import load_config
from wsss.core import results
from wsss.core.io import read_gray_png, write_label_png
from wsss.core.schema import section_defaults
from wsss.stages import ablation

EMBEDDED = REPO / "config" / "config.yaml"


# ---------------------------------------------------------------------------- grid points
def test_points_equal_to_the_configured_run_read_its_results():
    section = {"tau": 0.2, "lam": 0.5}
    assert ablation.variant("tau", 0.2, section) == ""
    assert ablation.variant("tau", 0.30000001, section) == "ablation/tau-0.3/"
    assert ablation.variant("lam", 0.5, section) == ""
    assert ablation.variant("saliency", "workflow", section) == ""
    assert ablation.variant("saliency", "centre_prior", section) == "ablation/saliency-centre_prior/"


def test_a_variant_sets_only_its_own_key():
    section = {"tau": 0.2, "lam": 0.5, "backbone": "small"}
    assert ablation.point_section(section, "ablation/tau-0.6/") == {**section, "tau": 0.6}
    assert ablation.point_section(section, "ablation/lam-0.1/") == {**section, "lam": 0.1}
    assert ablation.point_section(section, "ablation/saliency-ground_truth/") == section
    assert ablation.point_section(section, "") == section
    assert ablation.point_saliency("ablation/saliency-ground_truth/") == "ground_truth"
    assert ablation.point_saliency("ablation/saliency-workflow/") is None
    assert ablation.point_saliency("ablation/tau-0.3/") is None
    with pytest.raises(ValueError):
        ablation.parse_variant("ablation/gamma-0.3/")
    assert re.fullmatch(ablation.VARIANT_RE, "ablation/tau-0.3/") and re.fullmatch(ablation.VARIANT_RE, "")
    assert not re.fullmatch(ablation.VARIANT_RE, "ablation/saliency_maps/")


def test_the_schema_holds_the_papers_grids():
    defaults = section_defaults("ablation")
    assert defaults["tau"] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    assert defaults["lam"] == [0.1, 0.3, 0.5, 0.7, 0.9]
    assert defaults["saliency"] == ["workflow", *ablation.GENERATED_SALIENCY]
    assert defaults["in_all"] == []
    assert set(defaults) - {"in_all"} == set(ablation.ABLATIONS)


# ---------------------------------------------------------------------------- generated saliency
def test_generated_saliency_maps(tmp_path):
    label = np.zeros((8, 10), np.uint8)
    label[2:5, 3:7] = 2
    label[0, :] = 255  # ignore: not foreground
    write_label_png(tmp_path / "gt" / "a.png", label)
    (tmp_path / "ids.txt").write_text("a\n")
    ablation.ablation_saliency("ground_truth", tmp_path / "gt", tmp_path / "ids.txt", tmp_path / "gt_sal", {})
    np.testing.assert_array_equal(read_gray_png(tmp_path / "gt_sal" / "a.png"), (label == 2).astype(np.float32))
    ablation.ablation_saliency("centre_prior", tmp_path / "gt", tmp_path / "ids.txt", tmp_path / "centre",
                               {"centre_prior_sigma": 0.25})
    centre = read_gray_png(tmp_path / "centre" / "a.png")
    assert centre.shape == label.shape
    assert centre[3:5, 4:6].min() > 0.9 > centre[0, 0]
    with pytest.raises(ValueError):
        ablation.ablation_saliency("workflow", tmp_path / "gt", tmp_path / "ids.txt", tmp_path / "x", {})


# ---------------------------------------------------------------------------- table and figure
def test_table_and_figure(tmp_path):
    from wsss.stages.figures import figure_ablation
    from wsss.stages.tables import table_ablation

    jsons = []
    for k, miou in enumerate([0.41, 0.52]):
        path = tmp_path / f"{k}.json"
        path.write_text(json.dumps({"method": "eps", "images": 7, "miou": miou, "precision": 0.6, "recall": 0.7}))
        jsons.append(str(path))
    points = [{"value": "0.2", "label": "tau = 0.2", "configured": True},
              {"value": "0.4", "label": "tau = 0.4", "configured": False}]
    table = table_ablation("tau", points, jsons, str(tmp_path / "t.csv"))
    assert list(table["mIoU"]) == [41.0, 52.0]
    read = pd.read_csv(tmp_path / "t.csv")
    assert list(read["value"]) == [0.2, 0.4] and list(read["configured"]) == [True, False]
    figure_ablation(str(tmp_path / "t.csv"), str(tmp_path / "t.png"))
    assert (tmp_path / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError):
        table_ablation("tau", points[:1], jsons, str(tmp_path / "u.csv"))


# ---------------------------------------------------------------------------- the DAG
def _train_jobs(stdout: str) -> list[str]:
    """The model files of the train_classifier jobs in a dry run's plan."""
    blocks = stdout.split("rule train_classifier:")[1:]
    return [re.search(r"output: (\S+?),", b).group(1) for b in blocks]


def test_slurm_plan_has_one_training_job_per_grid_point(tmp_path):
    """Under the SLURM profile each grid point is its own train_classifier job; the configured
    point of each grid is the one configured EPS run (shared by the tau and lam grids)."""
    config = load_config(EMBEDDED)
    grids = config["ablation"]
    proc = snakemake(results.path("ablation_table", ablation="tau"), results.path("ablation_table", ablation="lam"),
                     results.path("ablation_table", ablation="saliency"), "-n", "--profile", "profiles/slurm",
                     "--workflow-profile", "none", workdir=tmp_path)
    models = _train_jobs(proc.stdout)
    expected = {results.path("classifier_model", variant=ablation.variant(n, v, config["classifier"]), classifier="eps")
                for n in ablation.ABLATIONS for v in grids[n]}
    assert sorted(models) == sorted(expected)
    points = sum(len(grids[n]) for n in ablation.ABLATIONS)
    assert len(models) == points - 2  # tau, lam and saliency each have one point that is the configured run
    assert len(re.findall(r"^rule ablation_saliency:", proc.stdout, re.M)) == 2


def test_rule_all_builds_ablations_only_when_in_all_names_them(tmp_path):
    plain = snakemake("-n", workdir=tmp_path)
    assert "table_ablation" not in plain.stdout and "ablation/" not in plain.stdout
    with_tau = snakemake("-n", "--config", 'ablation={"in_all": ["tau"]}', workdir=tmp_path)
    assert "rule table_ablation:" in with_tau.stdout and "rule figure_ablation:" in with_tau.stdout
    assert "lam-" not in with_tau.stdout and "saliency-" not in with_tau.stdout


def test_an_empty_grid_stops_naming_its_key(tmp_path):
    proc = snakemake(results.path("ablation_table", ablation="lam"), "-n", "--config", 'ablation={"lam": []}',
                     workdir=tmp_path, check=False)
    assert proc.returncode != 0
    assert "ablation.lam is empty" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_tiny_ablations_end_to_end(tiny_run):
    """tests/config/tiny.yaml's tau and saliency grids built on the tiny run, and their report."""
    config = load_config(TINY)
    start = time.perf_counter()
    # the targets as README types them (`snakemake results/figures/ablation_tau.png`)
    snakemake("results/figures/ablation_tau.png", "results/figures/ablation_saliency.png", "--cores", "2",
              "--resources", "gpu=1", "--configfile", str(TINY), workdir=tiny_run, timeout=1200)
    print(f"tiny tau + saliency ablations: {time.perf_counter() - start:.0f} s")
    from wsss.core.model_files import load_model

    for name in ("tau", "saliency"):
        table = pd.read_csv(tiny_run / results.path("ablation_table", ablation=name))
        assert [ablation.format_value(v) for v in table["value"]] == [ablation.format_value(v)
                                                                     for v in config["ablation"][name]]
        assert table["configured"].sum() == 1
        # each point's numbers, recomputed with numpy from its EPS pseudo-masks and the ground truth
        for row in table.itertuples():
            folder = "" if row.configured else f"ablation/{name}-{ablation.format_value(row.value)}/"
            masks = tiny_run / results.path("pseudo_masks", variant=folder, method="eps")
            images, s = folder_scores(tiny_run, config, masks, "pseudo")
            assert [row.images, row.mIoU, row.precision, row.recall] == [
                images, *(round(100 * s[k], 2) for k in ("mIoU", "precision", "recall"))], row
        assert (tiny_run / results.path("ablation_figure", ablation=name)).stat().st_size > 1000
    # The configured point is the tiny run's own EPS result; the others trained with their setting.
    tau = pd.read_csv(tiny_run / results.path("ablation_table", ablation="tau"))
    main = json.loads((tiny_run / results.path("eval_miou", variant="", stage="pseudo", method="eps")).read_text())
    assert tau[tau.configured].mIoU.item() == round(100 * main["miou"], 2)
    assert not (tiny_run / "results/ablation/tau-0.2").exists()
    tau_model = tiny_run / results.path("classifier_model", variant="ablation/tau-0.4/", classifier="eps")
    assert load_model(tau_model)["config"]["own"]["tau"] == 0.4
    # Each saliency point trained on its own maps.
    runs = ["results/classifier/eps", "results/ablation/saliency-ground_truth/classifier/eps",
            "results/ablation/saliency-centre_prior/classifier/eps"]
    fingerprints = {load_model(tiny_run / r / "model.pt")["config"]["data_sha1"] for r in runs}
    assert len(fingerprints) == 3
    from wsss_dev.readme import ablations_block

    block = ablations_block(tiny_run / "results" / "tables")
    assert "ablation_tau.csv" in block and "ablation_saliency.csv" in block
    assert f"**{tau[tau.configured].label.item()}**" in block
    report = tiny_run / "results" / "ablation_report.html"
    snakemake("results/figures/ablation_tau.png", "results/figures/ablation_saliency.png", "--configfile",
              str(TINY), "--report", str(report), workdir=tiny_run)
    html = report.read_text(errors="replace")
    for name in ("ablation_tau.png", "ablation_saliency.png", "ablation_tau.csv", "ablation_saliency.csv"):
        assert name in html, f"{name} missing from the report"


def test_readme_ablations_block_is_generated_from_the_tables(tmp_path):
    from wsss_dev.readme import update_readme

    rows = {"tau": [(0.1, "0.1", False, 60.5), (0.4, "0.4", True, 71.25)],
            "saliency": [("pfan", "PFAN", True, 70.0), ("ground_truth", "ground truth", False, 75.5)]}
    for name, points in rows.items():
        pd.DataFrame([{"ablation": name, "value": v, "label": label, "configured": configured, "method": "eps",
                       "images": 40, "mIoU": miou, "precision": 1.0, "recall": 1.0}
                      for v, label, configured, miou in points]).to_csv(tmp_path / f"ablation_{name}.csv", index=False)
    readme = tmp_path / "README.md"
    readme.write_text("a\n<!-- ablations:start -->\nold\n<!-- ablations:end -->\nb\n")
    update_readme(readme, tmp_path, block="ablations")
    text = readme.read_text()
    assert "\nold\n" not in text and text.startswith("a\n") and text.endswith("\nb\n")
    assert "| 0.1 | **0.4** |" in text and "| 60.5 | 71.25 |" in text
    assert "| **PFAN** | ground truth |" in text and "ablation_lam" not in text
    with pytest.raises(Exception, match="make ablations"):
        update_readme(readme, tmp_path / "nothing", block="ablations")
