"""Integration (slow): the per-image stages with two shards give the one-shard run's outputs.

tests/config/tiny.yaml runs one shard, so a merge that loses a shard, or a shard rule that picks the
wrong ids, would pass every other DAG test of `make test`. A copy of the session's tiny run
(conftest.tiny_run) reruns one chain of per-image stages with `shards: 2` and `evaluation.shards: 2`:
cam's CAM inference, pseudo-masks and CRF, the evaluation of its pseudo-masks, and the saliency
inference; each merged output is compared with the one-shard run's, file for file. (cam's chain:
eps's classifier trains on the saliency maps, so rebuilding them would retrain it.)
"""

from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pytest

from conftest import TINY, snakemake
from wsss.config.load import load_config
from wsss.core import results

pytestmark = pytest.mark.slow

CONFIG = load_config(TINY)
# The merged folder of each sharded rule, and the shard folders of each
MERGED = {results.path("cams", variant="", classifier="cam"): "cams/cam",
          results.path("pseudo_masks", variant="", method="cam"): "pseudo_masks/cam",
          results.path("pseudo_masks_crf", method="cam"): "pseudo_masks_crf/cam"}
SALIENCY = results.path("saliency_maps")
EVAL = "results/eval/pseudo/cam"  # summed from its shards' per-image counts


def same_npz(a, b) -> bool:
    with np.load(a) as x, np.load(b) as y:  # not the bytes: a zip member carries its write time
        return sorted(x.files) == sorted(y.files) and all(np.array_equal(x[k], y[k]) for k in x.files)


def per_image(path) -> tuple[set, set]:
    """An evaluation's per-image confusion counts, as sets of (id, cell, count) and (id, class, count)."""
    with np.load(path) as f:
        ids = f["ids"]
        return ({(ids[i], c, n) for i, c, n in zip(f["image"], f["cell"], f["count"])},
                {(ids[i], c, n) for i, c, n in zip(f["ignored_image"], f["ignored_class"], f["ignored_count"])})


def visible(folder) -> list[str]:
    """File names, without Snakemake's .snakemake_timestamp."""
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def differing(one, two) -> list[str]:
    """Files of folder `one` whose content differs in folder `two` (which must hold the same names)."""
    names = visible(one)
    assert names and visible(two) == names, two
    return [n for n in names if not (same_npz(one / n, two / n) if n.endswith(".npz")
                                     else (one / n).read_bytes() == (two / n).read_bytes())]


@pytest.fixture(scope="module")
def two_shards(tiny_run, tmp_path_factory):
    assert CONFIG["shards"] == 1 and CONFIG["evaluation"]["shards"] == 1
    work = tmp_path_factory.mktemp("shards") / "run"
    # the finished run without its ablation points (another test may have added them; not rerun here)
    shutil.copytree(tiny_run, work, symlinks=True, ignore=shutil.ignore_patterns("ablation"))
    shutil.rmtree(work / "results" / "shards")
    for path in [*MERGED, SALIENCY, EVAL]:
        shutil.rmtree(work / path)
    (work / "shards.yaml").write_text("shards: 2\nevaluation: {shards: 2}\n")
    start = time.perf_counter()
    snakemake(*MERGED, SALIENCY, f"{EVAL}/miou.json", "--cores", "2", "--resources", "gpu=1", "--configfile",
              str(TINY), str(work / "shards.yaml"), workdir=work, timeout=900)
    print(f"per-image stages with 2 shards: {time.perf_counter() - start:.0f} s")
    return work


def test_two_shards_give_the_one_shard_outputs(tiny_run, two_shards):
    # each stage really ran as two shards, each with its part of the ids
    for stage in [*MERGED.values(), "saliency"]:
        parts = [visible(two_shards / "results/shards" / stage / str(s)) for s in (0, 1)]
        assert parts[0] and parts[1] and not set(parts[0]) & set(parts[1]), stage
    for path in MERGED:
        assert differing(tiny_run / path, two_shards / path) == [], path
    one, two = ((run / EVAL / "miou.json").read_text() for run in (tiny_run, two_shards))
    assert json.loads(two) == json.loads(one)
    assert same_npz(tiny_run / EVAL / "confusion_matrix.npz", two_shards / EVAL / "confusion_matrix.npz")
    # the per-image counts are stored in shard order (the bootstrap sorts them by id): compare them by id
    assert per_image(two_shards / EVAL / "miou_per_image.npz") == per_image(tiny_run / EVAL / "miou_per_image.npz")
    assert visible(two_shards / SALIENCY) == visible(tiny_run / SALIENCY)  # every map, whatever its values


@pytest.mark.xfail(strict=True, reason="PFAN infers a batch at a time, and a batch's other images change the "
                   "float32 result by ~4e-6: enough to move a few pixels of the 8-bit maps by one level")
def test_two_shards_give_the_one_shard_saliency_maps(tiny_run, two_shards):
    assert differing(tiny_run / SALIENCY, two_shards / SALIENCY) == []
