"""Shard invariance: every per-image stage gives the same files for 1 and N shards once merged.

Each stage function is run the way its `{shard}` rule runs it (shard k of n, then
`wsss.core.sharding.merge_dirs`, as merge_shards.py does) on a small synthetic dataset in the
prepared layout, with random-init models (what is compared is the plumbing, not accuracy).
The shards also get different batch compositions, so per-image outputs that depended on
their batch neighbours would show up here too.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from wsss.core.io import BadInputError, load_maps, read_id_list
from wsss.core.model_files import save_model
from wsss.core.sharding import merge_dirs, shard_ids, shard_ids_within
from wsss.methods import CLASSIFIERS

CLASSES = ["train", "boat", "ball", "box", "kite", "star"]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """A 16-image synthetic benchmark (48 px) run through prepare_dataset."""
    from wsss.data.sources.synthetic.generate import SyntheticConfig, synthesize_dataset
    from wsss.data.sources.voc.prepare import prepare_dataset

    root = tmp_path_factory.mktemp("shard_data")
    cfg = SyntheticConfig(seed=3, image_size=48, num_train=12, num_val=4, num_saliency=2,
                          object_size=(10, 16), large_object_size=(12, 18), context_height=(4, 6))
    synthesize_dataset(root / "VOCdevkit", root / "benchmark_RELEASE", root / "DUTS-TR", root / "context", CLASSES, cfg)
    prepare_dataset(root / "VOCdevkit", root / "benchmark_RELEASE", root / "prepared", CLASSES)
    return root / "prepared"


def run_sharded(stage, num_shards: int, out: Path) -> Path:
    """`stage(shard, num_shards, shard_dir)` for every shard, then merge like merge_shards.py."""
    dirs = []
    for shard in range(num_shards):
        d = out / "shards" / str(shard)
        stage(shard, num_shards, d)
        dirs.append(d)
    merged = out / "merged"
    merge_dirs(dirs, merged)
    return merged


def assert_same_files(a: Path, b: Path, compare=None) -> int:
    names_a = sorted(p.name for p in a.iterdir())
    assert names_a == sorted(p.name for p in b.iterdir())
    for name in names_a:
        if compare is None:
            assert (a / name).read_bytes() == (b / name).read_bytes(), f"{name} differs between shard counts"
        else:
            compare(a / name, b / name)
    return len(names_a)


# ----------------------------------------------------------------------------- the split itself
def test_shards_partition_the_ids_whatever_their_order():
    ids = [f"2007_{i:06d}" for i in range(23)]
    for n in (1, 2, 3, 5, 23, 30):
        parts = [shard_ids(ids, k, n) for k in range(n)]
        assert sorted(i for p in parts for i in p) == sorted(ids)
        assert max(map(len, parts)) - min(map(len, parts)) <= 1  # balanced
        shuffled = ids[:]
        random.Random(n).shuffle(shuffled)
        assert [shard_ids(shuffled, k, n) for k in range(n)] == parts
    with pytest.raises(ValueError):
        shard_ids(ids, 2, 2)


def test_merge_rejects_overlapping_shards(tmp_path):
    for k in (0, 1):
        (tmp_path / str(k)).mkdir()
        (tmp_path / str(k) / "same.png").write_bytes(b"x")
    with pytest.raises(RuntimeError, match="overlap"):
        merge_dirs([tmp_path / "0", tmp_path / "1"], tmp_path / "merged")
    assert not (tmp_path / "merged").exists()  # atomic: nothing half-merged is left


# ----------------------------------------------------------------------------- the stages
def test_saliency_inference_is_shard_invariant(prepared, tmp_path):
    from wsss.models.pfan import build_pfan
    from wsss.stages.infer_saliency import infer_saliency

    torch.manual_seed(0)
    model_cfg = {"width": 0.125, "batch_norm": True, "kernel": 3, "backbone_weights": None}
    model = build_pfan(model_cfg)
    # Random weights give near-constant maps; spread the logits so 8-bit quantisation is tested.
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.5)
    model_path = tmp_path / "pfan.pt"
    save_model(model_path, model, {"model": {**model_cfg, "input_size": 48}})
    lists = [prepared / "lists/train_aug.txt", prepared / "lists/val.txt"]

    def stage(shard, n, out):
        infer_saliency(model_path, prepared / "JPEGImages", lists, out, shard=shard, num_shards=n, device="cpu",
                       batch_size=3)

    one, three = run_sharded(stage, 1, tmp_path / "n1"), run_sharded(stage, 3, tmp_path / "n3")
    assert assert_same_files(one, three) == 16


def test_cam_inference_is_shard_invariant(prepared, tmp_path):
    from wsss.models.classifier import build_classifier
    from wsss.stages.infer_cams import infer_cams

    torch.manual_seed(0)
    model = build_classifier(CLASSIFIERS["eps"], len(CLASSES), "small", None, 8)
    model_path = tmp_path / "eps.pt"
    save_model(model_path, model, {"classifier": "eps", "class_names": CLASSES,
                                   "model": {"backbone": "small", "width": 8}})

    def stage(shard, n, out):
        infer_cams(model_path, prepared / "JPEGImages", prepared / "labels.csv", prepared / "lists/train_aug.txt",
                   out, {"scales": [1.0, 0.5], "flip": True}, shard=shard, num_shards=n, device="cpu")

    def same_maps(a, b):
        ma, mb = load_maps(a), load_maps(b)
        assert ma.keys() == mb.keys()
        for key in ma:
            np.testing.assert_array_equal(ma[key], mb[key], err_msg=f"{a.name}: {key}")

    one, two = run_sharded(stage, 1, tmp_path / "n1"), run_sharded(stage, 2, tmp_path / "n2")
    assert assert_same_files(one, two, same_maps) == len(read_id_list(prepared / "lists/train_aug.txt"))


def test_crf_is_shard_invariant(prepared, tmp_path):
    from wsss.stages.crf import refine_crf

    def stage(shard, n, out):
        # The ground-truth masks stand in for pseudo-masks: the CRF only needs labels + image.
        refine_crf(prepared / "lists/val.txt", prepared / "JPEGImages", out, {"iterations": 3},
                   masks_dir=prepared / "SegmentationClassAug", labels_csv=prepared / "labels.csv",
                   shard=shard, num_shards=n, processes=1)

    one, two = run_sharded(stage, 1, tmp_path / "n1"), run_sharded(stage, 2, tmp_path / "n2")
    assert assert_same_files(one, two) == 4


def test_a_subset_is_sharded_as_the_list_that_holds_it():
    """The CRF and sweep shards of a split (train) are its ids in train_aug's shard: each reads that shard only."""
    universe = [f"2007_{i:06d}" for i in range(23)]
    subset = universe[::3]
    parts = [shard_ids_within(subset, universe, k, 4) for k in range(4)]
    assert sorted(i for p in parts for i in p) == sorted(subset)
    assert all(set(p) <= set(shard_ids(universe, k, 4)) for k, p in enumerate(parts))
    assert shard_ids_within(universe, universe, 1, 4) == shard_ids(universe, 1, 4)
    with pytest.raises(ValueError, match="outside"):
        shard_ids_within(["x"], universe, 0, 4)


def shard_copies(src: Path, ids_file: Path, n: int, out: Path, suffix: str) -> list[Path]:
    """`src`'s files split into the folders of train_aug's shards, as the per-shard stages write them."""
    dirs = []
    for k in range(n):
        d = out / str(k)
        d.mkdir(parents=True)
        for i in shard_ids(read_id_list(ids_file), k, n):
            (d / f"{i}{suffix}").hardlink_to(src / f"{i}{suffix}")
        dirs.append(d)
    return dirs


def test_crf_and_sweep_shards_read_only_their_train_aug_shard(prepared, tmp_path):
    """refine_crf and the CAM threshold sweep over the train split, sharded by train_aug, each given only
    its shard's masks and maps: merged, the same files and table as one job over everything."""
    from wsss.core.io import save_maps
    from wsss.stages.crf import refine_crf
    from wsss.stages.pseudo_masks import cam_threshold_sweep, cam_threshold_sweep_shard, merge_threshold_sweep

    lists, gt = prepared / "lists", prepared / "SegmentationClassAug"
    train, train_aug = lists / "train.txt", lists / "train_aug.txt"
    assert set(read_id_list(train)) < set(read_id_list(train_aug))
    rng = np.random.default_rng(0)
    for i in read_id_list(train_aug):
        save_maps(tmp_path / "maps" / f"{i}.npz", np.array([1, 3]), rng.random((2, 48, 48)).astype(np.float32), "uint8")
    masks = shard_copies(gt, train_aug, 3, tmp_path / "mask_shards", ".png")
    maps = shard_copies(tmp_path / "maps", train_aug, 3, tmp_path / "map_shards", ".npz")
    crf = {"iterations": 2}
    refine_crf(train, prepared / "JPEGImages", tmp_path / "crf_one", crf, masks_dir=gt, processes=1)
    for k in range(3):
        refine_crf(train, prepared / "JPEGImages", tmp_path / "crf" / str(k), crf, masks_dir=masks[k],
                   shard=k, num_shards=3, sharded_by=train_aug)
    merge_dirs([tmp_path / "crf" / str(k) for k in range(3)], tmp_path / "crf_merged")
    assert assert_same_files(tmp_path / "crf_one", tmp_path / "crf_merged") == len(read_id_list(train))
    thresholds = [0.1, 0.3, 0.5]
    cam_threshold_sweep(tmp_path / "maps", gt, train, thresholds, 7, tmp_path / "one.csv", fixed_threshold=0.3)
    for k in range(3):
        cam_threshold_sweep_shard(maps[k], gt, train, train_aug, k, 3, thresholds, 7, tmp_path / f"sweep_{k}.npz")
    merge_threshold_sweep([tmp_path / f"sweep_{k}.npz" for k in range(3)], thresholds, 7, tmp_path / "merged.csv",
                          fixed_threshold=0.3)
    assert (tmp_path / "merged.csv").read_bytes() == (tmp_path / "one.csv").read_bytes()
    with pytest.raises(BadInputError, match="thresholds"):
        merge_threshold_sweep([tmp_path / "sweep_0.npz"], [0.1, 0.3], 7, tmp_path / "bad.csv")


def test_missing_shard_input_names_the_file(prepared, tmp_path):
    from wsss.stages.infer_saliency import infer_saliency

    with pytest.raises(BadInputError, match="missing.pt"):
        infer_saliency(tmp_path / "missing.pt", prepared / "JPEGImages", [prepared / "lists/val.txt"],
                       tmp_path / "out", shard=0, num_shards=2, device="cpu")
