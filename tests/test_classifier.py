"""Classifier stage: pseudo-mask rules on crafted maps, the threshold sweep, and a tiny end-to-end
run (train cam/eps → multi-scale maps → pseudo-masks) on a dataset written by the test."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from wsss import methods
from wsss.config.settings import classifier_training
from wsss.core.io import (
    BadInputError,
    load_maps,
    read_label_png,
    write_gray_png,
    write_id_list,
    write_image,
    write_label_png,
)
from wsss.methods import CLASSIFIERS
from wsss.methods.cam import threshold_mask
from wsss.metrics.confusion_matrix import evaluate_dirs
from wsss.stages.pseudo_masks import cam_threshold_sweep, make_pseudo_masks, pseudo_mask

CLASSES = ["red", "blue"]
PM_PARAMS = {"threshold": 0.3, "saliency_threshold": 0.5}


def test_cam_mask_normalises_each_class_and_thresholds_background():
    maps = np.zeros((2, 4, 4), np.float32)
    maps[0, 0, 0] = 10.0          # class 2 (index 2 → label 3): peak 10
    maps[0, 0, 1] = 5.0           # 0.5 of its peak
    maps[1, 3, 3] = 0.2           # class 0 (label 1): weak map, peak 0.2 → normalised to 1
    maps[1, 3, 2] = 0.15          # 0.75 of its peak
    mask = threshold_mask(np.array([2, 0]), maps, threshold=0.6)
    assert mask.dtype == np.uint8
    assert mask[0, 0] == 3 and mask[0, 1] == 0       # 0.5 < 0.6 → background
    assert mask[3, 3] == 1 and mask[3, 2] == 1       # max-normalisation makes weak maps count
    assert (mask > 0).sum() == 3
    assert threshold_mask(np.array([2, 0]), maps, threshold=0.4)[0, 1] == 3
    # no present class → all background
    assert not threshold_mask(np.zeros(0, int), np.zeros((0, 4, 4), np.float32), 0.2).any()


def test_cam_sal_and_eps_masks():
    maps = np.ones((1, 2, 3), np.float32)
    sal = np.array([[0.9, 0.49, 0.5], [0.0, 1.0, 0.2]], np.float32)
    params = {"threshold": 0.2, "saliency_threshold": 0.5}
    mask = pseudo_mask(methods.method("cam_sal"), {"classes": np.array([1]), "maps": maps}, params, sal)
    assert mask.tolist() == [[2, 0, 2], [0, 2, 0]]
    with pytest.raises(BadInputError):
        pseudo_mask(methods.method("cam_sal"), {"classes": np.array([1]), "maps": maps}, params,
                    np.ones((3, 3), np.float32))
    # eps: softmax restricted to present classes (0, 4) + background (last)
    probs = np.array([[[0.6, 0.1]], [[0.3, 0.2]], [[0.1, 0.7]]], np.float32)
    data = {"classes": np.array([0, 4]), "probs": probs}
    assert pseudo_mask(methods.method("eps"), data, params).tolist() == [[1, 0]]


# ----------------------------------------------------------------------------- tiny dataset
def write_dataset(root, n=12, size=32):
    """Class 'red' (label 1): a red-topped square; 'blue' (label 2): a blue-topped square."""
    rng = np.random.default_rng(0)
    ids, rows = [], []
    for k in range(n):
        image_id = f"img{k:02d}"
        img = rng.integers(90, 110, (size, size, 3)).astype(np.uint8)
        label = np.zeros((size, size), np.uint8)
        present = [k % 2 == 0, k % 3 != 0]
        if not any(present):
            present[0] = True
        for c, on in enumerate(present):
            if not on:
                continue
            y, x = (4, 4) if c == 0 else (16, 16)
            img[y:y + 12, x:x + 12] = 128
            img[y:y + 5, x:x + 12] = (220, 30, 30) if c == 0 else (30, 30, 220)
            label[y:y + 12, x:x + 12] = c + 1
        write_image(root / "JPEGImages" / f"{image_id}.jpg", img)
        write_label_png(root / "SegmentationClassAug" / f"{image_id}.png", label)
        write_gray_png(root / "saliency" / f"{image_id}.png", (label > 0).astype(np.float32))
        ids.append(image_id)
        rows.append([image_id] + [int(p) for p in present])
    write_id_list(root / "train.txt", ids)
    with open(root / "labels.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([["id"] + CLASSES] + rows)
    return ids


SECTION = {"backbone": "small", "width": 4, "pretrained": None, "tau": 0.2, "lam": 0.5,
           "freeze_bn": False, "frozen_blocks": [], "head_init": "normal", "head_dropout": 0.0,
           "saliency_resize": "bilinear",
           "train": {"iterations": 4, "batch_size": 4, "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4,
                     "head_lr_mult": 10, "poly_power": 0.9, "crop_size": 32, "scale_range": [28, 36],
                     "flip": True, "color_jitter": 0.1, "num_workers": 0, "checkpoint_every": 2,
                     "log_every": 2, "amp": True, "channels_last": True, "hue_jitter": 0.0,
                     "resize_mode": "bilinear"}}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from wsss.stages.train_classifier import train_classifier

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("cls")
    ids = write_dataset(root)
    for method in ("cam", "eps"):
        record = methods.classifier(method)
        rates = train_classifier(record, root / "JPEGImages", root / "labels.csv", root / "train.txt",
                                 root / method / "model.pt", classifier_training(SECTION, record),
                                 saliency_dir=root / "saliency",
                                 checkpoint=root / "ck" / f"{method}.pt", loss_csv=root / method / "loss.csv",
                                 seed=3, device="cpu")
        if method == "eps":
            assert set(rates) == set(CLASSES)
    return root, ids


def test_training_is_reproducible_and_logs_losses(trained, tmp_path):
    from wsss.models.classifier import load_classifier
    from wsss.stages.train_classifier import train_classifier

    root, _ = trained
    header = next(csv.reader(open(root / "eps" / "loss.csv")))
    assert header == ["step", "lr", "loss", "cls", "sal", "fg_red", "fg_blue"]
    assert len(open(root / "cam" / "loss.csv").read().splitlines()) == 1 + 4
    again = tmp_path / "again.pt"
    eps = methods.classifier("eps")
    train_classifier(eps, root / "JPEGImages", root / "labels.csv", root / "train.txt", again,
                     classifier_training(SECTION, eps), saliency_dir=root / "saliency", seed=3, device="cpu")
    a, cfg = load_classifier(root / "eps" / "model.pt")
    b, _ = load_classifier(again)
    assert cfg["classifier"] == "eps" and cfg["class_names"] == CLASSES
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    with pytest.raises(BadInputError):
        train_classifier(eps, root / "JPEGImages", root / "labels.csv", root / "train.txt", again,
                         classifier_training(SECTION, eps))


def test_infer_maps_then_pseudo_masks_and_tables(trained, tmp_path):
    from wsss.core.sharding import merge_dirs
    from wsss.stages.infer_cams import infer_cams

    root, ids = trained
    infer = {"scales": [1.0, 0.5], "flip": True}
    labels = {r[0]: r[1:] for r in list(csv.reader(open(root / "labels.csv")))[1:]}
    for method in ("cam", "eps"):
        # two shards merged == one pass (per-image output never depends on the sharding)
        for s in range(2):
            infer_cams(root / method / "model.pt", root / "JPEGImages", root / "labels.csv", root / "train.txt",
                       tmp_path / method / f"shard{s}", infer, shard=s, num_shards=2, device="cpu")
        merge_dirs([tmp_path / method / "shard0", tmp_path / method / "shard1"], tmp_path / method / "cams")
        infer_cams(root / method / "model.pt", root / "JPEGImages", root / "labels.csv", root / "train.txt",
                   tmp_path / method / "single", infer, device="cpu")
        for i in ids:
            d = load_maps(tmp_path / method / "cams" / f"{i}.npz")
            assert np.array_equal(d["maps"], load_maps(tmp_path / method / "single" / f"{i}.npz")["maps"])
            present = [k for k, v in enumerate(labels[i]) if v == "1"]
            assert d["classes"].tolist() == present and d["maps"].shape == (len(present), 32, 32)
            assert (d["maps"] >= 0).all()
            if method == "eps":
                assert d["probs"].shape == (len(present) + 1, 32, 32)
                assert np.allclose(d["probs"].sum(0), 1.0, atol=1e-2)  # float16 storage
            else:
                assert "probs" not in d
    dirs = {}
    for method, cams in (("cam", "cam"), ("cam_sal", "cam"), ("eps", "eps")):
        out = tmp_path / "pm" / method
        make_pseudo_masks(methods.method(method), tmp_path / cams / "cams", root / "train.txt", out, PM_PARAMS,
                          root / "saliency",
                          processes=2 if method == "eps" else 1)
        dirs[method] = out
        # two shards merged are the one pass, byte for byte
        for s in range(2):
            make_pseudo_masks(methods.method(method), tmp_path / cams / "cams", root / "train.txt",
                              tmp_path / "pm_shards" / method / str(s), PM_PARAMS, root / "saliency", shard=s,
                              num_shards=2)
        merge_dirs([tmp_path / "pm_shards" / method / str(s) for s in range(2)], tmp_path / "pm_merged" / method)
        assert all((tmp_path / "pm_merged" / method / p.name).read_bytes() == p.read_bytes() for p in out.iterdir())
        assert len(list((tmp_path / "pm_merged" / method).iterdir())) == len(ids)
        for i in ids:
            mask = read_label_png(out / f"{i}.png")
            allowed = {0} | {k + 1 for k, v in enumerate(labels[i]) if v == "1"}
            assert mask.shape == (32, 32) and set(np.unique(mask)) <= allowed
    with pytest.raises(BadInputError, match="probs"):
        make_pseudo_masks(methods.method("eps"), tmp_path / "cam" / "cams", root / "train.txt", tmp_path / "bad",
                          PM_PARAMS)
    cam_miou = evaluate_dirs(dirs["cam"], root / "SegmentationClassAug", ids, 3).miou()
    sweep = cam_threshold_sweep(tmp_path / "cam" / "cams", root / "SegmentationClassAug", root / "train.txt",
                                [0.1, 0.3, 0.5], 3, tmp_path / "sweep.csv", fixed_threshold=0.3, processes=2)
    # the sweep's 0.3 row is exactly the mIoU of the cam pseudo-masks made with 0.3
    assert sweep[1]["miou"] == pytest.approx(cam_miou, abs=1e-12)
    assert [r["is_configured"] for r in sweep] == [False, True, False]
    assert sum(r["is_best"] for r in sweep) == 1
    assert next(csv.reader(open(tmp_path / "sweep.csv"))) == ["threshold", "miou", "precision", "recall",
                                                               "is_best", "is_configured"]


def test_saliency_loss_starts_after_warmup():
    from wsss.methods.eps import EpsSettings
    from wsss.methods.eps_loss import eps_step
    from wsss.models.classifier import build_classifier

    torch.manual_seed(0)
    model = build_classifier(CLASSIFIERS["eps"], 2, "small", width=4)
    batch = {"image": torch.randn(2, 3, 16, 16), "label": torch.tensor([[1.0, 0.0], [1.0, 1.0]]),
             "saliency": torch.rand(2, 1, 16, 16)}
    step = eps_step(2, EpsSettings(tau=0.2, lam=0.5, sal_warmup=3, skip_unclaimed=False), CLASSES)
    early, late = step(model, {**batch, "_step": 2}), step(model, {**batch, "_step": 3})
    assert early["loss"].item() == pytest.approx(early["cls"].item())
    assert late["loss"].item() == pytest.approx(late["cls"].item() + late["sal"].item(), rel=1e-6)
    assert late["sal"].item() > 0 and set(early) >= {"fg_red", "fg_blue"}
