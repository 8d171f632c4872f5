"""Integration: the whole DAG that exists, on the tiny config, plus planning and linting checks."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from conftest import REPO, TINY, snakemake
from wsss.core import results
from wsss.core.io import read_id_list, read_label_png
from wsss.data.datasets import read_labels_csv

pytestmark = pytest.mark.slow


def test_prepared_dataset(tiny_run):
    prep = tiny_run / "resources/synthetic/prepared"
    train_aug = read_id_list(prep / "lists/train_aug.txt")
    val = read_id_list(prep / "lists/val.txt")
    assert len(train_aug) == 40 and len(val) == 12
    assert not set(train_aug) & set(val)
    classes, labels = read_labels_csv(prep / "labels.csv")
    assert classes == ["train", "boat", "ball", "box", "kite", "star"]
    for image_id in train_aug[:10]:
        mask = read_label_png(prep / f"SegmentationClassAug/{image_id}.png")
        present = {int(v) - 1 for v in np.unique(mask) if 0 < v < 255}
        assert present == set(np.flatnonzero(labels[image_id]).tolist())


def test_inference_scales_and_flip_resolved_per_classifier(tiny_run):
    # tiny.yaml: scales {cam: [1.0], eps: [0.5, 1.0]}, flip {cam: true, eps: false}
    cam_log = (tiny_run / "logs/infer_cams/cam_0.log").read_text()
    eps_log = (tiny_run / "logs/infer_cams/eps_0.log").read_text()
    assert "scales [1.0], flip True" in cam_log
    assert "scales [0.5, 1.0], flip False" in eps_log


def test_resizing_jobs_reruns_nothing(tiny_run, tmp_path):
    """threads / runtime / mem_mb are a job's size (the `jobs` section), read as resources, never as
    params: changing every rule's size plans no job on a finished run (Snakemake reruns on changed
    params)."""
    from wsss.config.load import load_config

    jobs = load_config(TINY)["jobs"]
    assert {"train_classifier", "refine_crf", "evaluate_shard", "default"} <= set(jobs)
    overlay = {"jobs": {rule: {k: 2 * v + 1 for k, v in size.items()} for rule, size in jobs.items()}}
    (tmp_path / "resized.yaml").write_text(yaml.safe_dump(overlay))
    proc = snakemake("-n", "--cores", "2", "--configfile", str(TINY), str(tmp_path / "resized.yaml"), workdir=tiny_run)
    assert "Nothing to be done" in proc.stdout + proc.stderr, proc.stdout[-3000:]


def test_lint_is_clean():
    proc = snakemake("--lint", workdir=REPO, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("configfile", ["config/config.yaml", "config/voc12.yaml"])
def test_dry_run_plans(configfile, tmp_path):
    proc = snakemake("-n", "--configfile", str(REPO / configfile), workdir=tmp_path)
    assert "prepare_dataset" in proc.stdout


@pytest.mark.parametrize("device, gpus", [("auto", "gpu=1"), ("cpu", "gpu=0")])
def test_gpu_rules_ask_for_no_gpu_when_the_device_is_cpu(device, gpus, tmp_path):
    proc = snakemake("-n", results.path("classifier_model", variant="", classifier="eps"), "--resources", "gpu=1",
                     "--configfile", str(TINY), "--config", f"device={device}", workdir=tmp_path)
    plan = proc.stdout.split("rule train_classifier:")[1].split("\n\n")[0]
    assert f" {gpus}," in plan.split("resources:")[1]


def test_misspelt_key_fails_fast_naming_it(tmp_path):
    config = yaml.safe_load(TINY.read_text())
    config["dataset"]["synthetic"]["num_trian"] = 10
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    proc = snakemake("-n", "--configfile", str(bad), workdir=tmp_path, check=False)
    assert proc.returncode != 0
    assert "num_trian" in proc.stdout + proc.stderr
    assert not (tmp_path / "resources").exists()


def test_wrong_type_fails_naming_key(tmp_path):
    config = yaml.safe_load(TINY.read_text())
    config["shards"] = "two"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    proc = snakemake("-n", "--configfile", str(bad), workdir=tmp_path, check=False)
    assert proc.returncode != 0
    assert "shards" in proc.stdout + proc.stderr


def test_a_metric_setting_reruns_only_that_metric(tiny_run, tmp_path):
    """evaluate_shard is handed its kind's settings only: a new boundary tolerance rescores the
    boundary shards and nothing of the mIoU (miou.csv plans no job)."""
    overlay = tmp_path / "tolerance.yaml"
    overlay.write_text(yaml.safe_dump({"evaluation": {"boundary_tolerance": 3}}))
    proc = snakemake("-n", results.path("table", table="miou"), "--cores", "2", "--configfile", str(TINY),
                     str(overlay), workdir=tiny_run)
    assert "Nothing to be done" in proc.stdout + proc.stderr, proc.stdout[-3000:]
    proc = snakemake("-n", "--cores", "2", "--configfile", str(TINY), str(overlay), workdir=tiny_run)
    shards = [line.split("kind=")[1].split(",")[0] for line in proc.stdout.splitlines() if "kind=" in line]
    assert shards and set(shards) == {"boundary"}, proc.stdout[-3000:]


def test_a_jobs_entry_naming_no_rule_stops_the_plan(tmp_path):
    overlay = tmp_path / "typo.yaml"
    overlay.write_text(yaml.safe_dump({"jobs": {"train_clasifier": {"threads": 2, "mem_mb": 1000, "runtime": 10}}}))
    proc = snakemake("-n", "--configfile", str(TINY), str(overlay), workdir=tmp_path, check=False)
    assert proc.returncode != 0
    assert "jobs: train_clasifier name(s) no rule of this workflow" in proc.stdout + proc.stderr
    assert not (tmp_path / "resources").exists()
