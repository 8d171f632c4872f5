"""The map files of a coco14 run deleted once read (classifier.infer.keep_maps false, maps_in_flight): the tiny
COCO of tests/coco_fixture.py to its pseudo-mask tables twice — maps kept, and maps deleted in a run killed
(SIGKILL, as a power cut) while shard 0's readers run, then resumed — gives byte-identical tables."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml
from coco_fixture import build_archives
from httpserver import ArchiveServer
from test_coco14 import TRAIN_IDS, VAL_IDS
from test_coco14_workflow import coco_overlay, foreground

from conftest import REPO, SNAKEFILE, TINY, snakemake
from wsss.core.io import write_gray_png

# The pseudo-mask stages only (the readers of the maps); DeepLab reads none.
TARGETS = ["results/tables/miou.csv", "results/tables/cam_thresholds.csv"]
TABLES = ["miou.csv", "miou_per_class.csv", "cam_thresholds.csv"]


def overlay(path, dataset: dict, saliency_dir, keep: bool) -> str:
    path.write_text(yaml.safe_dump({
        "shards": 2,
        "dataset": dataset,
        "saliency": {"source": "precomputed", "precomputed_dir": str(saliency_dir)},
        # one map shard in flight: infer_cams of shard 1 waits for shard 0's readers
        "classifier": {"train": {"decay_iterations": 2},
                       "infer": {"map_dtype": "uint8", "keep_maps": keep, "maps_in_flight": 1}},
        "evaluation": {"tables": {"miou": ["pseudo", "pseudo_crf"]}}}))
    return str(path)


def run_until_killed(workdir, configs: list[str], started: str, timeout: float = 900) -> None:
    """Start the run; SIGKILL it and its jobs once `started` (a job's log) exists."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--directory", str(workdir), *TARGETS,
           "--cores", "2", "--configfile", *configs]
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        while not (workdir / started).exists():
            assert proc.poll() is None, f"the run ended ({proc.returncode}) before {started} appeared"
            assert time.monotonic() < deadline, f"{started} did not appear"
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.mark.slow
def test_tables_are_the_same_with_maps_kept_and_with_maps_deleted_after_a_killed_run(tmp_path):
    zips = build_archives(tmp_path / "served")
    for image_id in TRAIN_IDS + VAL_IDS:
        write_gray_png(tmp_path / "saliency" / f"{image_id}.png", foreground(image_id))
    kept, gone = tmp_path / "kept", tmp_path / "gone"
    with ArchiveServer({p.name: p for p in zips.values()}) as srv:
        dataset = coco_overlay(srv.url, zips)
        dataset["coco14"]["masks"] = "convert"
        keep = [str(TINY), overlay(tmp_path / "keep.yaml", dataset, tmp_path / "saliency", True)]
        drop = [str(TINY), overlay(tmp_path / "drop.yaml", dataset, tmp_path / "saliency", False)]
        snakemake(*TARGETS, "results/cams/cam", "results/cams/eps", "--cores", "2", "--configfile", *keep, workdir=kept,
                  timeout=900)
    # the second run starts from the first one's data and classifiers (hard links, their times kept): what
    # the switch changes starts at the maps. Killed while shard 0's maps are read (eps's pseudo-masks
    # started), unlocked and resumed as after a power cut.
    for part in ("resources", "results/classifier", "results/saliency"):
        shutil.copytree(kept / part, gone / part, copy_function=os.link)
    run_until_killed(gone, drop, "logs/make_pseudo_masks/eps_0.log")
    assert (gone / "results/shards/cams/eps/0").exists() and not (gone / "results/tables/miou.csv").exists()
    snakemake("--unlock", *TARGETS, "--configfile", *drop, workdir=gone)
    snakemake(*TARGETS, "--cores", "2", "--configfile", *drop, workdir=gone, timeout=900)
    for name in TABLES:
        assert (gone / "results/tables" / name).read_bytes() == (kept / "results/tables" / name).read_bytes(), name
    # kept: every map merged into results/cams (uint8, classifier.infer.map_dtype); deleted: no map left
    for classifier in ("cam", "eps"):
        assert sorted(p.stem for p in (kept / "results/cams" / classifier).glob("*.npz")) == sorted(TRAIN_IDS)
        assert not (gone / "results/cams" / classifier).exists()
        assert not list((gone / "results/shards/cams" / classifier).glob("*"))
    with np.load(kept / "results/cams/eps" / f"{TRAIN_IDS[0]}.npz") as maps:
        assert maps["maps"].dtype == np.uint8 and maps["peak"].dtype == np.float32
    # the archives went once their folders were checked against them; nothing is downloaded again
    assert not list((kept / "resources/downloads").glob("*.zip"))
    raw = kept / "resources/coco14/coco2014"
    manifest = json.loads((raw / "train2014.manifest.json").read_text())
    assert manifest == {"archive": "train2014.zip", "member": "train2014", "files": len(TRAIN_IDS) + 1,
                        "bytes": manifest["bytes"]} and manifest["bytes"] > 0
    for workdir, configs in ((kept, keep), (gone, drop)):
        again = snakemake("-n", *TARGETS, "--configfile", *configs, workdir=workdir)
        assert "Nothing to be done" in again.stdout + again.stderr
