"""The released-checkpoint path: classifier.checkpoint pointing at state dicts in the official EPS
layout (resnet38_cls / resnet38_eps, saved by the test with random weights) runs the DAG to the
tables on the embedded data, and released_checkpoints.csv sets their pseudo-masks beside the
official README's numbers."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
import yaml

from conftest import TINY, snakemake
from wsss.core import results
from wsss.data.sources import source
from wsss.stages.tables import released_checkpoints

pytestmark = pytest.mark.slow
CLASSES = ["train", "boat", "ball", "box", "kite", "star"]


def official_state(method: str) -> dict:
    """What the official code's torch.save(model.module.state_dict(), 'checkpoint_cls.pth') holds."""
    from wsss.methods import CLASSIFIERS
    from wsss.models.classifier import build_classifier
    from wsss.models.official import project_to_official

    torch.manual_seed(0 if method == "cam" else 1)
    return project_to_official(build_classifier(CLASSIFIERS[method], len(CLASSES), "resnet38d").state_dict())


def test_official_checkpoints_run_to_the_tables(tmp_path):
    for method in ("cam", "eps"):
        torch.save(official_state(method), tmp_path / f"{method}_checkpoint_cls.pth")
    overlay = tmp_path / "released.yaml"
    overlay.write_text(yaml.safe_dump({"classifier": {"checkpoint": {
        "cam": str(tmp_path / "cam_checkpoint_cls.pth"), "eps": str(tmp_path / "eps_checkpoint_cls.pth")}}}))
    work = tmp_path / "work"
    proc = snakemake("-n", "--configfile", str(TINY), str(overlay), workdir=work)
    assert "import_classifier" in proc.stdout and "train_classifier" not in proc.stdout
    snakemake("--cores", "2", "--configfile", str(TINY), str(overlay), workdir=work, timeout=1200)
    miou = pd.read_csv(work / results.path("table", table="miou"))
    assert {"cam", "eps"} <= set(miou.method)
    # the embedded data has no published numbers: asking for the comparison says so
    # the target as README types it
    asked = snakemake("-n", "results/tables/released_checkpoints.csv", "--configfile", str(TINY), str(overlay),
                      workdir=work, check=False)
    assert asked.returncode != 0 and "data source 'synthetic' has none" in asked.stdout + asked.stderr
    # on VOC the same table sets each imported classifier's pseudo-masks beside the authors' numbers
    checkpoints = {"cam": "cam.pth", "eps": "eps.pth"}
    released = released_checkpoints(work / results.path("table", table="miou"), checkpoints,
                                    source("voc").released_train_miou, tmp_path / "released.csv")
    pseudo = miou[miou.stage == "pseudo"].set_index("method").mIoU
    assert list(released.method) == ["cam", "eps"] and list(released.published_mIoU) == [47.05, 69.22]
    assert list(released.difference) == [round(pseudo["cam"] - 47.05, 2), round(pseudo["eps"] - 69.22, 2)]
    # a cam checkpoint given as eps's is refused, naming the file
    bad = tmp_path / "swapped.yaml"
    bad.write_text(yaml.safe_dump({"classifier": {"checkpoint": {"eps": str(tmp_path / "cam_checkpoint_cls.pth")}}}))
    proc = snakemake(results.path("classifier_model", variant="", classifier="eps"), "--cores", "1", "--configfile",
                     str(TINY), str(bad), workdir=tmp_path / "swapped", check=False)
    log = (tmp_path / "swapped/logs/import_classifier/eps.log").read_text()
    assert proc.returncode != 0 and "cam_checkpoint_cls.pth" in log and "classifier.checkpoint.cam" in log
    assert not (tmp_path / "swapped" / results.path("classifier_model", variant="", classifier="eps")).exists()
