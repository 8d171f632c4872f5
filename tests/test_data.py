"""Data stage: the synthetic benchmark in the real layouts, preparation, datasets, and the VOC rules
run end to end against a loopback server serving archives in the real archive layouts."""

from __future__ import annotations

import hashlib
import tarfile

import numpy as np
import pytest
import scipy.io
import torch
import torchvision
import yaml
from httpserver import ArchiveServer

from conftest import snakemake
from wsss.core.io import BadInputError, read_id_list, read_label_png
from wsss.data.datasets import TrainTransform, WSSSDataset, read_labels_csv
from wsss.data.prepared import mask_boundary
from wsss.data.sources.synthetic.generate import SyntheticConfig, synthesize_dataset
from wsss.data.sources.voc.prepare import prepare_dataset

CLASSES = ["train", "boat", "ball", "box", "kite", "star"]


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    cfg = SyntheticConfig(num_train=24, num_val=8, num_saliency=6)
    synthesize_dataset(root / "VOCdevkit", root / "benchmark_RELEASE", root / "DUTS-TR", root / "context", CLASSES, cfg)
    prepare_dataset(root / "VOCdevkit", root / "benchmark_RELEASE", root / "prepared", CLASSES)
    return root


def test_generator_is_deterministic_whatever_the_process_count(tmp_path, synthetic_root):
    cfg = SyntheticConfig(num_train=24, num_val=8, num_saliency=6)
    synthesize_dataset(tmp_path / "VOCdevkit", tmp_path / "benchmark_RELEASE", tmp_path / "DUTS-TR",
                       tmp_path / "context", CLASSES, cfg, processes=2)
    files = sorted(p.relative_to(synthetic_root) for d in ("VOCdevkit", "benchmark_RELEASE", "DUTS-TR", "context")
                   for p in (synthetic_root / d).rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path) for d in ("VOCdevkit", "benchmark_RELEASE", "DUTS-TR", "context")
                           for p in (tmp_path / d).rglob("*") if p.is_file())
    assert any(rel.suffix == ".mat" for rel in files) and any(rel.parts[0] == "DUTS-TR" for rel in files)
    for rel in files:
        skip = 128 if rel.suffix == ".mat" else 0  # a MAT file's 128-byte header holds its creation time
        assert (tmp_path / rel).read_bytes()[skip:] == (synthetic_root / rel).read_bytes()[skip:], rel


def test_torchvision_readers_accept_the_layout(synthetic_root):
    voc = torchvision.datasets.VOCSegmentation(str(synthetic_root), year="2012", image_set="train")
    image, target = voc[0]
    assert image.size == (64, 64) and target.mode == "P"
    values = set(np.unique(np.array(target)).tolist())
    assert 255 in values and values - {0, 255} and max(values - {255}) <= len(CLASSES)
    sbd = torchvision.datasets.SBDataset(str(synthetic_root / "benchmark_RELEASE/dataset"), image_set="train",
                                         mode="segmentation")
    image, target = sbd[0]
    sbd_train = read_id_list(synthetic_root / "benchmark_RELEASE/dataset/train.txt")
    assert image.size == (64, 64) and len(sbd) == len(sbd_train)
    # torchvision's boundaries mode assumes VOC's 20 classes; scipy reads SBD's per-class cells directly.
    mat_id = sbd.images[0].rsplit("/", 1)[-1][:-4]
    gt = scipy.io.loadmat(synthetic_root / f"benchmark_RELEASE/dataset/cls/{mat_id}.mat")["GTcls"][0, 0]
    cells = gt["Boundaries"].ravel()
    assert len(cells) == len(CLASSES)
    seg = gt["Segmentation"]
    union = np.zeros(seg.shape, bool)
    for c, cell in enumerate(cells, start=1):
        b = cell.toarray().astype(bool)
        assert not (b & (seg != c)).any()  # each class's boundary lies on that class
        union |= b
    assert (union == mask_boundary(seg)).all()


def test_context_and_saliency_sets(synthetic_root):
    assert (synthetic_root / "context/classes.txt").read_text().split() == ["railroad", "water"]
    ctx = read_label_png(synthetic_root / "context/2012_000000.png")
    assert ctx.max() <= 2
    masks = sorted((synthetic_root / "DUTS-TR/DUTS-TR-Mask").glob("*.png"))
    assert len(masks) == 6 and len(list((synthetic_root / "DUTS-TR/DUTS-TR-Image").glob("*.jpg"))) == 6


def test_prepared_layout(synthetic_root):
    prep = synthetic_root / "prepared"
    train_aug, train, val = (read_id_list(prep / f"lists/{s}.txt") for s in ("train_aug", "train", "val"))
    assert len(train_aug) == 24 and len(train) == 12 and len(val) == 8
    assert set(train) <= set(train_aug) and not set(val) & set(train_aug)
    # heldout: where values are chosen; disjoint from both reported splits, labelled by SBD.
    heldout = read_id_list(prep / "lists/heldout.txt")
    assert heldout == sorted(set(train_aug) - set(train)) and len(heldout) == 12
    classes, labels = read_labels_csv(prep / "labels.csv")
    assert classes == CLASSES and set(labels) == set(train_aug) | set(val)
    for image_id in train_aug + val:
        mask = read_label_png(prep / f"SegmentationClassAug/{image_id}.png")
        boundary = read_label_png(prep / f"boundaries/{image_id}.png")
        assert set(np.unique(boundary)) <= {0, 1}
        present = {v - 1 for v in np.unique(mask) if 0 < v < 255}
        assert present == set(np.flatnonzero(labels[image_id]))
    # VOC masks keep their 255 borders; SBD-only ids have none (as with the real data).
    assert 255 in read_label_png(prep / f"SegmentationClassAug/{train[0]}.png")
    sbd_only = sorted(set(train_aug) - set(train))
    assert 255 not in read_label_png(prep / f"SegmentationClassAug/{sbd_only[-1]}.png")


def test_prepare_rejects_too_few_classes(synthetic_root, tmp_path):
    with pytest.raises(BadInputError, match="dataset.classes lists only 1 classes"):
        prepare_dataset(synthetic_root / "VOCdevkit", synthetic_root / "benchmark_RELEASE", tmp_path / "p", ["a"])
    assert not (tmp_path / "p").exists()


def test_dataset_items_and_seeded_augmentation(synthetic_root):
    prep = synthetic_root / "prepared"
    ids = read_id_list(prep / "lists/train.txt")
    plain = WSSSDataset(ids, prep / "JPEGImages", prep / "labels.csv", mask_dir=prep / "SegmentationClassAug")
    item = plain[0]
    assert item["image"].shape == (3, 64, 64) and item["mask"].shape == (64, 64) and item["label"].shape == (6,)
    sal_dir = synthetic_root / "sal"
    sal_dir.mkdir(exist_ok=True)
    from wsss.core.io import write_gray_png
    for i in ids:
        write_gray_png(sal_dir / f"{i}.png", np.full((64, 64), 0.5))
    aug = WSSSDataset(ids, prep / "JPEGImages", prep / "labels.csv", saliency_dir=sal_dir,
                      mask_dir=prep / "SegmentationClassAug",
                      transform=TrainTransform(crop_size=48, scale_range=(48, 80), color_jitter=0.3))
    a, b, c = aug[(3, 7)], aug[(3, 7)], aug[(3, 8)]
    assert a["image"].shape == (3, 48, 48) and a["saliency"].shape == (1, 48, 48)
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["mask"], b["mask"])
    assert not torch.equal(a["image"], c["image"])
    # padding: mask 255 exactly where the saliency pad (0) is, inside a crop bigger than the image
    big = WSSSDataset(ids, prep / "JPEGImages", saliency_dir=sal_dir, mask_dir=prep / "SegmentationClassAug",
                      transform=TrainTransform(crop_size=80, flip=False))[(0, 1)]
    pad = big["mask"] == 255
    assert pad.sum() >= 80 * 80 - 64 * 64 and (big["saliency"][0][pad & (big["saliency"][0] == 0)]).numel() > 0


def test_saliency_of_wrong_size_is_named(synthetic_root, tmp_path):
    prep = synthetic_root / "prepared"
    ids = read_id_list(prep / "lists/train.txt")[:1]
    from wsss.core.io import write_gray_png
    write_gray_png(tmp_path / f"{ids[0]}.png", np.zeros((10, 12)))
    with pytest.raises(BadInputError, match=f"{ids[0]}.png: saliency map is"):
        WSSSDataset(ids, prep / "JPEGImages", saliency_dir=tmp_path)[0]


# The paper setting's ImageNet/COCO weight files are the user's to place; the data tests need none.
NO_WEIGHTS = {"saliency": {"model": {"backbone_weights": None}}, "deeplab": {"init_weights": None},
              "classifier": {"pretrained": None}}


def _tar_dir(out, src_root, top, mode):
    with tarfile.open(out, mode) as tar:
        tar.add(src_root / top, arcname=top)
    return out, hashlib.md5(out.read_bytes()).hexdigest()


@pytest.mark.slow
def test_voc_rules_against_loopback_server(synthetic_root, tmp_path):
    """download_voc/download_sbd → extract → prepare_dataset, as with the real archives."""
    voc_tar, voc_md5 = _tar_dir(tmp_path / "VOCtrainval_11-May-2012.tar", synthetic_root, "VOCdevkit", "w")
    sbd_tgz, sbd_md5 = _tar_dir(tmp_path / "benchmark.tgz", synthetic_root, "benchmark_RELEASE", "w:gz")
    work = tmp_path / "work"
    with ArchiveServer({voc_tar.name: voc_tar, sbd_tgz.name: sbd_tgz}) as srv:
        srv.cut_after[voc_tar.name] = voc_tar.stat().st_size // 3  # the first VOC download is cut
        config = {"dataset": {"source": "voc", "root": "resources/voc", "classes": CLASSES,
                              "voc": {"voc_url": f"{srv.url}/{voc_tar.name}", "voc_md5": voc_md5,
                                      "sbd_url": f"{srv.url}/{sbd_tgz.name}", "sbd_md5": sbd_md5}}}
        config.update(NO_WEIGHTS)  # data targets only: the weight files the config check wants are not needed
        cfg = tmp_path / "voc.yaml"
        cfg.write_text(yaml.safe_dump(config))
        snakemake("resources/voc/prepared", "--cores", "2", "--configfile", str(cfg), workdir=work)
        prep = work / "resources/voc/prepared"
        expected = read_id_list(synthetic_root / "prepared/lists/train_aug.txt")
        assert read_id_list(prep / "lists/train_aug.txt") == expected
        ranges = [r for name, r in srv.requests if name == voc_tar.name]
        assert ranges[0] is None and ranges[1] is not None and ranges[1].startswith("bytes=")
        n = len(srv.requests)
        proc = snakemake("resources/voc/prepared", "--cores", "2", "--configfile", str(cfg), workdir=work)
        assert len(srv.requests) == n and "Nothing to be done" in proc.stdout + proc.stderr


def test_wrong_checksum_rule_leaves_no_output(synthetic_root, tmp_path):
    sbd_tgz, _ = _tar_dir(tmp_path / "benchmark.tgz", synthetic_root, "benchmark_RELEASE", "w:gz")
    work = tmp_path / "work"
    with ArchiveServer({sbd_tgz.name: sbd_tgz}) as srv:
        config = {"dataset": {"source": "voc", "root": "resources/voc", "classes": CLASSES,
                              "voc": {"sbd_url": f"{srv.url}/{sbd_tgz.name}", "sbd_md5": "f" * 32}}}
        config.update(NO_WEIGHTS)  # data targets only: the weight files the config check wants are not needed
        cfg = tmp_path / "voc.yaml"
        cfg.write_text(yaml.safe_dump(config))
        proc = snakemake("resources/downloads/benchmark.tgz", "--cores", "1", "--configfile", str(cfg),
                         workdir=work, check=False)
    assert proc.returncode != 0
    log = (work / "logs/download_sbd/download_sbd.log").read_text()
    assert "does not match the expected" in log
    assert not (work / "resources/downloads/benchmark.tgz").exists()
    assert not (work / "resources/downloads/benchmark.tgz.part").exists()


def test_cli_synthesize_and_prepare(tmp_path):
    from wsss.__main__ import main

    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"dataset": {"classes": CLASSES, "synthetic": {"num_train": 8, "num_val": 4,
                                                                                "num_saliency": 4}}}))
    assert main(["synthesize", str(tmp_path / "r"), "--config", str(cfg)]) == 0
    assert main(["prepare", str(tmp_path / "r/VOCdevkit"), str(tmp_path / "r/benchmark_RELEASE"),
                 str(tmp_path / "p"), "--config", str(cfg)]) == 0
    assert len(read_id_list(tmp_path / "p/lists/train_aug.txt")) == 8
