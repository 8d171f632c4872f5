"""Integration (slow): the segmentation stage's outputs in the session's tiny run of the whole DAG."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import TINY
from wsss.config.load import load_config
from wsss.core.io import read_id_list, read_label_png
from wsss.core.model_files import load_model

pytestmark = pytest.mark.slow

CONFIG = load_config(TINY)


def test_crf_pseudo_masks_cover_train_aug(tiny_run):
    prep = tiny_run / "resources/synthetic/prepared"
    ids = read_id_list(prep / "lists/train_aug.txt")
    for method in CONFIG["methods"]:
        out = tiny_run / "results/pseudo_masks_crf" / method
        assert sorted(p.stem for p in out.glob("*.png")) == sorted(ids)
        for i in ids[:5]:
            crf = read_label_png(out / f"{i}.png")
            raw = read_label_png(tiny_run / "results/pseudo_masks" / method / f"{i}.png")
            assert crf.shape == raw.shape
            assert 255 not in np.unique(crf)


@pytest.mark.parametrize("method", CONFIG["deeplab"]["methods"])
def test_deeplab_model_loss_and_val_predictions(tiny_run, method):
    prep = tiny_run / "resources/synthetic/prepared"
    root = tiny_run / "results/deeplab" / method
    model = load_model(root / "model.pt")
    assert model["config"]["num_classes"] == len(CONFIG["dataset"]["classes"]) + 1
    loss = pd.read_csv(root / "loss.csv")
    assert list(loss["step"]) == list(range(1, CONFIG["deeplab"]["iterations"] + 1))
    val = read_id_list(prep / "lists/val.txt")
    for sub in ("pred", "pred_crf"):
        assert sorted(p.stem for p in (root / sub).glob("*.png")) == sorted(val)
    for i in val[:4]:
        pred = read_label_png(root / "pred" / f"{i}.png")
        assert pred.shape == read_label_png(prep / f"SegmentationClassAug/{i}.png").shape
        assert pred.max() <= len(CONFIG["dataset"]["classes"])
    assert (tiny_run / "benchmarks/train_segmentation" / f"{method}.tsv").exists()
