"""The MS-COCO 2014 paper setting, end to end on the CPU: config/coco14.yaml on the tiny COCO of
tests/coco_fixture.py with only its addresses, classes, sizes, iteration counts and worker counts
changed (tests/config/paper_smoke_coco14.yaml). It runs the code paths a COCO user runs: the three
archives downloaded and extracted, the authors' masks and PFAN maps from archives through the weights
stage, ResNet-38d from an MXNet .params file with the official recipe and the logged decay horizon,
uint8 map files, the official EPS pseudo-mask rule, DeepLab-v2 ResNet-101; then the released
checkpoints (config/coco14-released.yaml) scored beside 31.23 / 37.15. It catches crashes, not numbers."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from coco_fixture import CLASSES, build_archives
from httpserver import ArchiveServer
from PIL import Image
from table_reference import check_tables
from test_coco14 import EXPECTED, TRAIN_IDS, VAL_IDS
from test_coco14_workflow import coco_overlay, foreground
from test_paper_smoke import write_weight_files

from conftest import REPO, snakemake
from wsss.config.load import load_config
from wsss.core import results
from wsss.core.io import read_label_png
from wsss.data.layout import PREPARED
from wsss.data.weights import digests

pytestmark = pytest.mark.slow

COCO14 = REPO / "config" / "coco14.yaml"
SMOKE = REPO / "tests" / "config" / "paper_smoke_coco14.yaml"


def png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def write_released_archives(config: dict, workdir) -> None:
    """The authors' two COCO archives as this test imagines them: masks under one more folder level,
    saliency maps (the masks' objects, train only) under SALImages/."""
    with zipfile.ZipFile(workdir / config["dataset"]["coco14"]["released_masks"], "w") as zf:
        for image_id, mask in EXPECTED.items():
            zf.writestr(f"coco_seg/SegmentationClass/{image_id.split('_')[1]}/{image_id}.png",
                        png(np.array(mask, np.uint8)))
    with zipfile.ZipFile(workdir / config["saliency"]["released_archive"], "w") as zf:
        for image_id in TRAIN_IDS:
            zf.writestr(f"SALImages/{image_id}.png", png((foreground(image_id) * 255).astype(np.uint8)))


def official_checkpoint(method: str, num_classes: int) -> dict:
    """A released checkpoint's content: the official code's resnet38_cls / resnet38_eps state dict."""
    from wsss.methods import CLASSIFIERS
    from wsss.models.classifier import build_classifier
    from wsss.models.official import project_to_official

    torch.manual_seed(0 if method == "cam" else 1)
    return project_to_official(build_classifier(CLASSIFIERS[method], num_classes, "resnet38d").state_dict())


def placed(folder, path) -> str:
    """A config fragment giving every file of the weights folder its checksum (as a user's placed files)."""
    files = {p.name: {"url": f"http://127.0.0.1:9/{p.name}", "sha256": digests(p)["sha256"]}
             for p in folder.iterdir() if p.is_file()}
    path.write_text(yaml.safe_dump({"weights": {"files": files}}))
    return str(path)


def test_coco14_paper_setting_runs_end_to_end(tmp_path):
    config = load_config(COCO14, SMOKE)
    assert config["classifier"]["backbone"] == "resnet38d" and config["dataset"]["coco14"]["masks"] == "released"
    assert config["saliency"]["source"] == "released" and config["classifier"]["infer"]["map_dtype"] == "uint8"
    work = tmp_path / "work"
    write_weight_files(work, config)
    write_released_archives(config, work)
    folder = work / config["weights"]["dir"]
    zips = build_archives(tmp_path / "served")
    with ArchiveServer({p.name: p for p in zips.values()}) as srv:
        (tmp_path / "urls.yaml").write_text(yaml.safe_dump({"dataset": {"coco14": coco_overlay(srv.url, zips)[
            "coco14"]}}))
        configs = ["--configfile", str(COCO14), str(SMOKE), str(tmp_path / "urls.yaml"),
                   placed(folder, tmp_path / "placed.yaml")]
        snakemake("--cores", "2", "--resources", "gpu=0", *configs, workdir=work, timeout=1500)
    assert sorted(p.name for p in (folder / ".verified").iterdir()) == sorted(
        f"{p.name}.json" for p in folder.iterdir() if p.is_file())  # every file the run reads, verified
    prepared = work / config["dataset"]["root"] / "prepared"
    released = work / config["dataset"]["root"] / "coco2014" / "SegmentationClass"
    for image_id, mask in EXPECTED.items():  # the authors' masks, found in their archive and linked
        path = prepared / PREPARED["masks"] / f"{image_id}.png"
        np.testing.assert_array_equal(read_label_png(path), np.array(mask, np.uint8))
        assert path.stat().st_ino == (released / image_id.split("_")[1] / f"{image_id}.png").stat().st_ino
    assert (prepared / PREPARED["train"]).read_text().split() == TRAIN_IDS
    assert (prepared / PREPARED["val"]).read_text().split() == VAL_IDS
    miou = pd.read_csv(work / results.path("table", table="miou"))
    assert set(zip(miou.method, miou.stage)) == {(m, s) for m in ("cam", "cam_sal", "eps")
                                                 for s in ("pseudo", "pseudo_crf")} | {
        ("eps", "deeplab"), ("eps", "deeplab_crf")}
    assert check_tables(work, config) == {"miou.csv": len(miou)}  # its numbers, recomputed from the PNGs
    assert not (work / "results/saliency/pfan").exists()
    assert "resnet38d" in (work / "logs/train_classifier/eps.log").read_text()
    lrs = pd.read_csv(work / results.path("classifier_losses", variant="", classifier="eps")).lr.tolist()
    assert lrs == pytest.approx([0.01, 0.01 * 0.5 ** 0.9, 0.01 * 0.5 ** 0.9], rel=1e-6)  # the decay horizon
    with np.load(work / results.path("cams", variant="", classifier="eps") / f"{TRAIN_IDS[0]}.npz") as maps:
        assert maps["maps"].dtype == np.uint8 and bool(maps["official"])  # eps_rule official, uint8 files

    # The released checkpoints (official layout, random weights for the fixture's five classes).
    for method in ("cam", "eps"):
        torch.save(official_checkpoint(method, len(CLASSES)), folder / f"{method}_coco14_checkpoint_cls.pth")
    released_configs = [*configs[:2], str(REPO / "config" / "coco14-released.yaml"), *configs[2:4],
                        placed(folder, tmp_path / "placed.yaml")]
    # the target as README types it for the authors' COCO classifiers
    snakemake("results/tables/released_checkpoints.csv", "--forcerun", "import_classifier", "--cores", "2",
              "--resources", "gpu=0", *released_configs, workdir=work, timeout=1500)
    table = pd.read_csv(work / results.path("released_checkpoints"))
    assert list(table.method) == ["cam", "eps"] and list(table.published_mIoU) == [31.23, 37.15]
    assert list(table.images) == [len(TRAIN_IDS)] * 2
    assert list(table.difference) == [round(m - p, 2) for m, p in zip(table.mIoU, table.published_mIoU)]
    for method in ("cam", "eps"):
        assert f"{method}_coco14_checkpoint_cls.pth" in (work / f"logs/import_classifier/{method}.log").read_text()
