"""Method `released`: the authors' released pseudo-masks as a mask source, through the whole DAG."""

from __future__ import annotations

import zipfile

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import TINY, snakemake
from wsss.core.io import read_id_list, read_label_png
from wsss.metrics.confusion_matrix import evaluate_dirs

pytestmark = pytest.mark.slow


def write_release(prepared, path, ids, nested="VOC2012/PseudoMasks"):
    """A zip of the ground truth with each mask's lower half set to background (a known pseudo-mask)."""
    masks = {}
    with zipfile.ZipFile(path, "w") as zf:
        for i in ids:
            mask = read_label_png(prepared / "SegmentationClassAug" / f"{i}.png")
            mask[mask.shape[0] // 2:] = 0
            masks[i] = mask
            from io import BytesIO

            from PIL import Image
            buf = BytesIO()
            Image.fromarray(mask, mode="L").save(buf, format="PNG")
            zf.writestr(f"{nested}/{i}.png", buf.getvalue())
    return masks


def test_released_masks_train_deeplab_and_fill_the_tables(tmp_path):
    snakemake("resources/synthetic/prepared", "--cores", "2", "--configfile", str(TINY), workdir=tmp_path)
    prepared = tmp_path / "resources/synthetic/prepared"
    train_aug = read_id_list(prepared / "lists/train_aug.txt")
    masks = write_release(prepared, tmp_path / "release.zip", train_aug)
    overlay = {"methods": ["released"], "deeplab": {"methods": ["released"]},
               "pseudo_masks": {"released_archive": str(tmp_path / "release.zip")}}
    (tmp_path / "released.yaml").write_text(yaml.safe_dump(overlay))
    configs = [str(TINY), str(tmp_path / "released.yaml")]
    proc = snakemake("-n", "--configfile", *configs, workdir=tmp_path)
    assert "train_classifier" not in proc.stdout and "import_released_masks" in proc.stdout
    snakemake("--cores", "2", "--configfile", *configs, workdir=tmp_path, timeout=1500)
    got = tmp_path / "results/pseudo_masks/released"
    assert sorted(p.stem for p in got.glob("*.png")) == train_aug
    assert all(np.array_equal(read_label_png(got / f"{i}.png"), masks[i]) for i in train_aug[:5])
    miou = pd.read_csv(tmp_path / "results/tables/miou.csv").set_index(["method", "stage"])
    train = read_id_list(prepared / "lists/train.txt")
    expected = evaluate_dirs(got, prepared / "SegmentationClassAug", train, 7).miou()
    assert miou.loc[("released", "pseudo"), "mIoU"] == round(100 * expected, 2)
    assert ("released", "deeplab") in miou.index and ("released", "pseudo_crf") in miou.index


def test_a_release_missing_an_id_stops_naming_it(tmp_path):
    snakemake("resources/synthetic/prepared", "--cores", "2", "--configfile", str(TINY), workdir=tmp_path)
    prepared = tmp_path / "resources/synthetic/prepared"
    train_aug = read_id_list(prepared / "lists/train_aug.txt")
    write_release(prepared, tmp_path / "release.zip", train_aug[1:])
    (tmp_path / "released.yaml").write_text(yaml.safe_dump({
        "methods": ["released"], "deeplab": {"methods": []},
        "pseudo_masks": {"released_archive": str(tmp_path / "release.zip")}}))
    proc = snakemake("results/pseudo_masks/released", "--cores", "1", "--configfile", str(TINY),
                     str(tmp_path / "released.yaml"), workdir=tmp_path, check=False)
    log = (tmp_path / "logs/import_released_masks/released.log").read_text()
    assert proc.returncode != 0 and f"lacks 1 of {len(train_aug)} ids (e.g. {train_aug[0]})" in log
    assert not (tmp_path / "results/pseudo_masks/released").exists()
