"""Saliency stage: DUTS data, metrics, PFAN training/inference, precomputed maps, DUTS extraction."""

import csv
import logging
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from wsss.core import results
from wsss.core.io import BadInputError, read_gray_png, write_gray_png, write_id_list, write_image
from wsss.data.duts import DUTSDataset, SaliencyAugment, extract_duts, list_duts, split_duts
from wsss.metrics.saliency import SaliencyScores, centre_prior
from wsss.stages.infer_saliency import evaluate_saliency, import_precomputed_saliency, infer_saliency, load_pfan
from wsss.stages.train_saliency import train_saliency

torch.set_num_threads(1)
TINY_MODEL = {"width": 0.0625, "batch_norm": True, "kernel": 5, "input_size": 32, "backbone_weights": None}


def _blob_image(rng, size=40):
    """A bright square on a dark noisy background, and its mask."""
    img = rng.integers(0, 60, (size, size, 3)).astype(np.uint8)
    mask = np.zeros((size, size), np.uint8)
    s = int(rng.integers(10, 20))
    y, x = (int(v) for v in rng.integers(0, size - s, 2))
    img[y:y + s, x:x + s] = (220, 200, 40)
    mask[y:y + s, x:x + s] = 255
    return img, mask


@pytest.fixture(scope="module")
def duts(tmp_path_factory):
    root = tmp_path_factory.mktemp("duts") / "DUTS-TR"
    rng = np.random.default_rng(0)
    for k in range(12):
        img, mask = _blob_image(rng)
        write_image(root / "DUTS-TR-Image" / f"s{k:02d}.jpg", img)
        write_gray_png(root / "DUTS-TR-Mask" / f"s{k:02d}.png", mask)
    return root


@pytest.fixture(scope="module")
def trained(duts, tmp_path_factory):
    out = tmp_path_factory.mktemp("pfan")
    train_saliency(duts, out / "model.pt", model=TINY_MODEL,
                   train_cfg={"iterations": 3, "batch_size": 4, "log_every": 1, "checkpoint_every": 2,
                              "num_workers": 0},
                   holdout=0.25, seed=0, device="cpu", checkpoint=out / "ckpt.pt", loss_csv=out / "loss.csv")
    return out


def test_list_and_split(duts, tmp_path):
    ids = list_duts(duts)
    assert len(ids) == 12
    train, held = split_duts(ids, 0.25, seed=1)
    assert len(held) == 3 and not set(train) & set(held) and sorted(train + held) == ids
    assert split_duts(list(reversed(ids)), 0.25, seed=1) == (train, held)  # order-independent
    assert split_duts(ids, 0.25, seed=2) != (train, held)
    # An image without its mask is named.
    bad = tmp_path / "bad"
    (bad / "DUTS-TR-Mask").mkdir(parents=True)
    write_image(bad / "DUTS-TR-Image" / "x1.jpg", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(BadInputError, match="x1"):
        list_duts(bad)


def test_dataset_augmentation_is_a_function_of_the_seed(duts):
    ds = DUTSDataset(duts, list_duts(duts), 32, SaliencyAugment(min_crop=0.6, color_jitter=0.2))
    a, b, c = ds[(3, 11)], ds[(3, 11)], ds[(3, 12)]
    assert a["image"].shape == (3, 32, 32) and a["mask"].shape == (1, 32, 32)
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["mask"], b["mask"])
    assert not torch.equal(a["image"], c["image"])
    assert 0 <= float(a["mask"].min()) and float(a["mask"].max()) <= 1
    plain = ds[3]
    assert plain["id"] == "s03" and plain["mask"].sum() > 0


def test_training_crop_keeps_scale_and_is_seeded(duts):
    full = DUTSDataset(duts, list_duts(duts), 32, SaliencyAugment(min_crop=1.0, flip=False, color_jitter=0.0))
    crop = DUTSDataset(duts, list_duts(duts), 32,
                       SaliencyAugment(min_crop=1.0, flip=False, color_jitter=0.0, crop_size=20))
    a, b = crop[(5, 7)], crop[(5, 7)]
    assert a["image"].shape == (3, 20, 20) and a["mask"].shape == (1, 20, 20)
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["mask"], b["mask"])
    # A window of the whole (un-cropped) sample, at its scale: found somewhere in it.
    whole = full[(5, 7)]["image"]
    windows = [(y, x) for y in range(13) for x in range(13)
               if torch.equal(whole[:, y:y + 20, x:x + 20], a["image"])]
    assert windows
    assert crop[5]["image"].shape == (3, 32, 32)  # no seed (inference, evaluation): whole image


def test_metrics_known_answers():
    gt = np.zeros((10, 10), np.float32)
    gt[2:6, 2:6] = 1
    perfect = SaliencyScores()
    perfect.add(gt, gt)
    r = perfect.result()
    assert r["mae"] == 0 and r["max_f"] == pytest.approx(1.0)
    # Half of the object predicted (precision 1, recall 0.5): F = 1.3 * 0.5 / (0.3 + 0.5).
    half = gt.copy()
    half[4:6] = 0
    s = SaliencyScores()
    s.add(half, gt)
    assert s.result()["max_f"] == pytest.approx(1.3 * 0.5 / 0.8)
    assert s.result()["mae"] == pytest.approx(8 / 100)
    prior = centre_prior(20, 30, 0.25)
    assert prior.shape == (20, 30) and prior.max() == pytest.approx(1.0, abs=0.01)
    assert prior[10, 15] > prior[0, 0]


def test_training_writes_model_and_losses(trained):
    rows = list(csv.DictReader(open(trained / "loss.csv")))
    assert [int(r["step"]) for r in rows] == [1, 2, 3]
    assert {"loss", "bce", "edge"} <= set(rows[0])
    model, size = load_pfan(trained / "model.pt", torch.device("cpu"))
    assert size == 32 and model.cfg.width == 0.0625


def test_killed_training_resumes_to_identical_weights(trained, duts, tmp_path, monkeypatch, caplog):
    import wsss.stages.train_saliency as ts

    real_loss, calls = ts.pfan_loss, []

    def dying_loss(*args):
        calls.append(1)
        if len(calls) == 3:  # die in step 3, after the step-2 checkpoint
            raise KeyboardInterrupt
        return real_loss(*args)

    kwargs = dict(model=TINY_MODEL, train_cfg={"iterations": 3, "batch_size": 4, "log_every": 1, "num_workers": 0,
                                               "checkpoint_every": 2},
                  holdout=0.25, seed=0, device="cpu", checkpoint=tmp_path / "ckpt.pt", loss_csv=tmp_path / "loss.csv")
    monkeypatch.setattr(ts, "pfan_loss", dying_loss)
    with pytest.raises(KeyboardInterrupt):
        train_saliency(duts, tmp_path / "model.pt", **kwargs)
    assert not (tmp_path / "model.pt").exists() and torch.load(tmp_path / "ckpt.pt", weights_only=False)["step"] == 2
    monkeypatch.setattr(ts, "pfan_loss", real_loss)
    caplog.set_level(logging.INFO, logger="wsss.core.train_loop")
    train_saliency(duts, tmp_path / "model.pt", **kwargs)
    # 3 iterations - the step-2 checkpoint = 1 step run, from the checkpoint (a rerun from step 0
    # would end with the same weights: only this tells them apart)
    assert f"resumed from {tmp_path / 'ckpt.pt'} at step 2" in caplog.text
    assert "ran 1 optimisation steps (from step 2 to 3 of 3)" in caplog.text
    resumed = torch.load(tmp_path / "model.pt", weights_only=False)["model"]
    straight = torch.load(trained / "model.pt", weights_only=False)["model"]
    assert resumed.keys() == straight.keys()
    for k in straight:
        assert torch.equal(resumed[k], straight[k]), k


def test_infer_shards_equal_unsharded(trained, duts, tmp_path):
    images = duts / "DUTS-TR-Image"
    ids = list_duts(duts)
    write_id_list(tmp_path / "a.txt", ids[:7])
    write_id_list(tmp_path / "b.txt", ids[5:])  # overlapping lists: union
    lists = [tmp_path / "a.txt", tmp_path / "b.txt"]
    infer_saliency(trained / "model.pt", images, lists, tmp_path / "all", device="cpu", batch_size=5)
    for s in range(2):
        infer_saliency(trained / "model.pt", images, lists, tmp_path / f"s{s}", shard=s, num_shards=2,
                       device="cpu", batch_size=3)
    names = sorted(p.name for p in (tmp_path / "all").iterdir())
    assert names == [f"{i}.png" for i in ids]
    for n in names:
        shard = tmp_path / ("s0" if (tmp_path / "s0" / n).exists() else "s1")
        np.testing.assert_array_equal(read_gray_png(tmp_path / "all" / n), read_gray_png(shard / n))
        with Image.open(tmp_path / "all" / n) as im:
            assert im.mode == "L" and im.size == (40, 40)


def test_evaluate_writes_table(trained, duts, tmp_path):
    rows = evaluate_saliency(trained / "model.pt", duts, tmp_path / "saliency.csv", holdout=0.25, seed=0,
                             device="cpu")
    table = list(csv.DictReader(open(tmp_path / "saliency.csv")))
    assert [r["model"] for r in table] == ["pfan", "centre_prior"]
    assert all(r["n_images"] == "3" for r in table)
    assert all(0 <= r["mae"] <= 1 and 0 <= r["max_f"] <= 1 for r in rows)


def _precomputed_setup(tmp_path, sizes):
    images, maps = tmp_path / "JPEGImages", tmp_path / "maps"
    ids = [f"im{k}" for k in range(len(sizes))]
    for i, (h, w) in zip(ids, sizes):
        write_image(images / f"{i}.jpg", np.zeros((h, w, 3), np.uint8))
        write_gray_png(maps / f"{i}.png", np.linspace(0, 1, h * w, dtype=np.float32).reshape(h, w))
    write_id_list(tmp_path / "train.txt", ids[:-1])
    write_id_list(tmp_path / "val.txt", ids[-1:])
    return images, maps, [tmp_path / "train.txt", tmp_path / "val.txt"], ids


def test_precomputed_missing_map_names_first_missing_id(tmp_path):
    images, maps, lists, ids = _precomputed_setup(tmp_path, [(12, 16)] * 4)
    (maps / "im1.png").unlink()
    (maps / "im3.png").unlink()
    with pytest.raises(BadInputError, match=r"im1\.png: no saliency map for image id im1 \(2 of 4"):
        import_precomputed_saliency(maps, images, lists, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing that looks finished
    with pytest.raises(BadInputError, match="precomputed_dir does not exist"):
        import_precomputed_saliency(tmp_path / "nowhere", images, lists, tmp_path / "out")


def test_precomputed_resizes_with_warning(tmp_path, caplog):
    images, maps, lists, ids = _precomputed_setup(tmp_path, [(12, 16), (10, 10)])
    Image.new("RGB", (5, 6), (90, 90, 90)).save(maps / "im1.png")  # wrong size, grey stored as RGB
    with pytest.raises(BadInputError, match=r"im1\.png: saliency map is 5x6 but its image is 10x10"):
        import_precomputed_saliency(maps, images, lists, tmp_path / "out")  # resizing is opt-in
    assert not (tmp_path / "out").exists()
    with caplog.at_level(logging.WARNING, logger="wsss.stages.infer_saliency"):
        resized = import_precomputed_saliency(maps, images, lists, tmp_path / "out", resize_mismatched=True)
    assert resized == 1 and "im1.png" in caplog.text
    with Image.open(tmp_path / "out" / "im1.png") as im:
        assert im.mode == "L" and im.size == (10, 10)
    assert (tmp_path / "out" / "im0.png").stat().st_ino == (maps / "im0.png").stat().st_ino  # hard link


def test_extract_duts_zip(tmp_path, duts):
    archive = tmp_path / "DUTS-TR.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in sorted(duts.rglob("*")):
            if p.is_file():
                zf.write(p, "DUTS-TR/" + str(p.relative_to(duts)))
    assert extract_duts(archive, tmp_path / "out") == 12
    assert list_duts(tmp_path / "out") == list_duts(duts)
    wrong = tmp_path / "wrong.zip"
    with zipfile.ZipFile(wrong, "w") as zf:
        zf.writestr("other/x.txt", "x")
    with pytest.raises(BadInputError, match="no top-level DUTS-TR"):
        extract_duts(wrong, tmp_path / "out2")
    assert not (tmp_path / "out2").exists()


@pytest.mark.slow
def test_tiny_run_has_saliency_outputs(tiny_run):
    """The DAG on the tiny config: a map per train_aug + val id at image size, and the quality table."""
    from wsss.core.io import read_id_list

    prep = tiny_run / "resources/synthetic/prepared"
    ids = read_id_list(prep / "lists/train_aug.txt") + read_id_list(prep / "lists/val.txt")
    maps = tiny_run / results.path("saliency_maps")
    assert sorted(p.stem for p in maps.glob("*.png")) == sorted(ids)
    with Image.open(maps / f"{ids[0]}.png") as m, Image.open(prep / f"JPEGImages/{ids[0]}.jpg") as im:
        assert m.mode == "L" and m.size == im.size
    table = list(csv.DictReader(open(tiny_run / results.path("saliency_table"))))
    assert [r["model"] for r in table] == ["pfan", "centre_prior"]
