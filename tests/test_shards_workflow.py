"""Integration (slow): the per-image stages with two shards give the one-shard run's outputs.

tests/config/tiny.yaml runs one shard, so a merge that loses a shard, or a shard rule that picks the
wrong ids, would pass every other DAG test of `make test`. This test reruns only the per-image
stages of a copy of the session's tiny run (conftest.tiny_run) with `shards: 2` and
`evaluation.shards: 2`, and compares every merged output with the one-shard run's, file for file.
"""

from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pytest

from conftest import TINY, snakemake
from wsss.config.load import load_config

pytestmark = pytest.mark.slow

CONFIG = load_config(TINY)
# The merged folder of every sharded stage (saliency and CAM inference, pseudo-masks, CRF)
MERGED = (["results/saliency/maps"] + [f"results/cams/{c}" for c in ("cam", "eps")]
          + [f"results/pseudo_masks/{m}" for m in CONFIG["methods"]]
          + [f"results/pseudo_masks_crf/{m}" for m in CONFIG["methods"]])
EVAL = "results/eval/pseudo/eps"  # one evaluation, summed from its shards' per-image counts


def same_npz(a, b) -> bool:
    with np.load(a) as x, np.load(b) as y:  # not the bytes: a zip member carries its write time
        return sorted(x.files) == sorted(y.files) and all(np.array_equal(x[k], y[k]) for k in x.files)


def assert_same_folder(one, two):
    names = sorted(p.name for p in one.iterdir())
    assert names and sorted(p.name for p in two.iterdir()) == names, two
    for name in names:
        if name.endswith(".npz"):
            assert same_npz(one / name, two / name), two / name
        else:
            assert (one / name).read_bytes() == (two / name).read_bytes(), two / name


def test_two_shards_give_the_one_shard_outputs(tiny_run, tmp_path):
    assert CONFIG["shards"] == 1 and CONFIG["evaluation"]["shards"] == 1
    work = tmp_path / "two_shards"
    # the finished run without its ablation points (another test may have added them; not rerun here)
    shutil.copytree(tiny_run, work, symlinks=True, ignore=shutil.ignore_patterns("ablation"))
    shutil.rmtree(work / "results" / "shards")
    for path in [*MERGED, EVAL]:
        shutil.rmtree(work / path)
    (tmp_path / "shards.yaml").write_text("shards: 2\nevaluation: {shards: 2}\n")
    start = time.perf_counter()
    snakemake(*MERGED, f"{EVAL}/miou.json", "--cores", "2", "--resources", "gpu=1", "--configfile", str(TINY),
              str(tmp_path / "shards.yaml"), workdir=work, timeout=900)
    print(f"per-image stages with 2 shards: {time.perf_counter() - start:.0f} s")
    # each stage really ran as two shards, each with its part of the ids
    for stage in ("saliency", "cams/eps", "pseudo_masks/eps", "pseudo_masks_crf/cam_sal"):
        parts = [sorted(p.name for p in (work / "results/shards" / stage / str(s)).iterdir()) for s in (0, 1)]
        assert parts[0] and parts[1] and not set(parts[0]) & set(parts[1]), stage
    for path in MERGED:
        assert_same_folder(tiny_run / path, work / path)
    one, two = ((run / EVAL / "miou.json").read_text() for run in (tiny_run, work))
    assert json.loads(two) == json.loads(one)
    for name in ("confusion_matrix.npz", "miou_per_image.npz"):
        assert same_npz(tiny_run / EVAL / name, work / EVAL / name), name
