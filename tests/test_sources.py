"""The data-source contract: a source is one registry record, one module and one rule file ending
in <root>/prepared/; the tables it cannot feed are absent, and asking for one says why."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import TINY, snakemake
from wsss.core import results
from wsss.core.io import write_gray_png, write_id_list, write_image, write_label_png
from wsss.data.sources import SOURCES, source

PLUGINS = Path(__file__).parent / "plugins"


def test_builtin_sources_declare_what_they_provide():
    assert {"voc", "synthetic", "coco14"} <= set(SOURCES)
    assert source("voc").tables() == ["miou", "boundary", "confusion_ratio"]
    assert source("voc").scene_labels == "pascal_context" and source("voc").saliency_set == "duts"
    assert source("synthetic").saliency_set == "own" and len(source("voc").classes) == 20
    assert source("voc").released_train_miou == {"cam": 47.05, "eps": 69.22}
    with pytest.raises(ValueError, match="Add a dataset"):
        source("nope")


def write_folder(root: Path, n_train: int = 16, n_val: int = 6, size: int = 32) -> dict[str, np.ndarray]:
    """A disc (label 1) and/or a square (label 2) on noise, with saliency = their foreground."""
    rng = np.random.default_rng(0)
    masks = {}
    yy, xx = np.mgrid[0:size, 0:size]
    for k in range(n_train + n_val):
        image_id = f"toy{k:02d}"
        img = rng.integers(80, 120, (size, size, 3)).astype(np.uint8)
        mask = np.zeros((size, size), np.uint8)
        if k % 3 != 2:
            disc = (yy - 10) ** 2 + (xx - 10) ** 2 <= 36
            img[disc], mask[disc] = (220, 40, 40), 1
        if k % 3 != 0:
            img[18:28, 18:28], mask[18:28, 18:28] = (40, 40, 220), 2
        write_image(root / "folder/images" / f"{image_id}.jpg", img)
        write_label_png(root / "folder/labels" / f"{image_id}.png", mask)
        write_gray_png(root / "saliency" / f"{image_id}.png", (mask > 0).astype(np.float32))
        masks[image_id] = mask
    ids = sorted(masks)
    write_id_list(root / "folder/train.txt", ids[:n_train])
    write_id_list(root / "folder/val.txt", ids[n_train:])
    return masks


@pytest.fixture
def plugin_env(monkeypatch):
    env = {"WSSS_PLUGINS": "toy_source", "PYTHONPATH": os.pathsep.join([str(PLUGINS), *sys.path])}
    monkeypatch.setattr(os, "environ", {**os.environ, **env})


@pytest.mark.slow
def test_a_registered_toy_source_runs_to_the_tables(tmp_path, plugin_env):
    """A folder of images + label PNGs, registered through WSSS_PLUGINS, runs the DAG to miou.csv;
    it declares no boundaries and no scene labels, so those tables are absent from its DAG."""
    masks = write_folder(tmp_path / "resources/toy")
    overlay = {"dataset": {"source": "toy_folder", "root": "resources/toy"},
               "saliency": {"source": "precomputed", "precomputed_dir": str(tmp_path / "resources/toy/saliency")},
               "deeplab": {"methods": ["eps"]}}
    (tmp_path / "toy.yaml").write_text(yaml.safe_dump(overlay))
    configs = [str(TINY), str(tmp_path / "toy.yaml")]
    snakemake("--cores", "2", "--configfile", *configs, workdir=tmp_path, timeout=1500)
    prepared = tmp_path / "resources/toy/prepared"
    assert (prepared / "classes.txt").read_text() == "disc\nsquare\n"
    labels = pd.read_csv(prepared / "labels.csv").set_index("id")
    assert labels.loc["toy00"].tolist() == [1, 0] and labels.loc["toy01"].tolist() == [1, 1]
    assert not (prepared / "boundaries").exists()
    miou = pd.read_csv(tmp_path / results.path("table", table="miou"))
    assert set(zip(miou.method, miou.stage)) == {(m, s) for m in ("cam", "cam_sal", "eps")
                                                 for s in ("pseudo", "pseudo_crf")} | {
        ("eps", "deeplab"), ("eps", "deeplab_crf")}
    assert (miou[miou.stage == "pseudo"].images == 16).all() and (miou[miou.stage == "deeplab"].images == 6).all()
    tables = sorted(p.name for p in (tmp_path / "results/tables").iterdir())
    assert "boundary.csv" not in tables and "confusion_ratio.csv" not in tables
    # the target as README types it (asking COCO for a boundary table)
    asked = snakemake("-n", "results/tables/boundary.csv", "--configfile", *configs, workdir=tmp_path, check=False)
    assert asked.returncode != 0
    assert "needs boundary annotations" in asked.stdout + asked.stderr
    assert "data source 'toy_folder' does not provide" in asked.stdout + asked.stderr
    assert len(masks) == 22
