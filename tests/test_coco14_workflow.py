"""Data source coco14 in the workflow: the tiny COCO of tests/coco_fixture.py, served as its three zip
archives on a loopback server, runs download -> sharded conversion -> pseudo-masks -> DeepLab ->
results/tables/miou.csv; and config/coco14.yaml plans the paper's whole COCO run from nothing."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from coco_fixture import CLASSES, build_archives
from httpserver import ArchiveServer
from table_reference import check_tables
from test_coco14 import EXPECTED, LABELS, TRAIN_IDS, VAL_IDS
from test_documented_commands import job_counts

from conftest import REPO, SNAKEFILE, TINY, snakemake
from wsss.config.load import load_config
from wsss.core.io import read_label_png, write_gray_png
from wsss.data.layout import PREPARED
from wsss.data.sources import source
from wsss.data.sources.coco14 import COCO14_CLASSES
from wsss.data.sources.coco14.prepare import ARCHIVES

COCO14 = REPO / "config" / "coco14.yaml"
ROOT = "resources/coco14"
# The pseudo-mask stages only: the readers of the map files (DeepLab reads none).
PSEUDO_TARGETS = ["results/tables/miou.csv", "results/tables/cam_thresholds.csv"]


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def coco_overlay(url: str, zips: dict[str, Path]) -> dict:
    """dataset.coco14 pointing at the loopback server's archives, with their checksums."""
    section = {f"{key}_url": f"{url}/{zips[key].name}" for key in ARCHIVES}
    section |= {f"{key}_md5": md5(zips[key]) for key in ARCHIVES}
    return {"source": "coco14", "root": ROOT, "classes": CLASSES, "coco14": section}


def foreground(image_id: str) -> np.ndarray:
    """A saliency map: the hand-worked mask's objects (crowd regions not salient)."""
    mask = np.array(EXPECTED[image_id], np.uint8)
    return ((mask > 0) & (mask < 255)).astype(np.float32)


def test_the_source_declares_coco():
    coco = source("coco14")
    assert coco.tables() == ["miou"] and not coco.boundaries and coco.scene_labels is None and not coco.heldout
    assert coco.released_train_miou == {"cam": 31.23, "eps": 37.15} and coco.saliency_set == "duts"
    # labels.txt's 80 names, in ascending category id (1, 2, 3, ..., 88, 89, 90 with the gaps removed)
    assert len(set(COCO14_CLASSES)) == 80 and COCO14_CLASSES[:3] == ("person", "bicycle", "car")
    assert COCO14_CLASSES[9] == "traffic_light" and COCO14_CLASSES[-2:] == ("hair_drier", "toothbrush")


def test_schema_defaults_are_the_official_archives():
    from wsss.core.schema import section_defaults

    coco = section_defaults("dataset.coco14")
    official = {key: (archive.url, archive.md5) for key, archive in ARCHIVES.items()}
    assert {key: (coco[f"{key}_url"], coco[f"{key}_md5"]) for key in ARCHIVES} == official
    assert coco["masks"] == "released"


def run_until_killed(workdir: Path, configs: list[str], started: str, timeout: float = 900) -> None:
    """Start the whole run; SIGKILL it and its jobs (a power cut) once `started` (a job's log) exists."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--directory", str(workdir), "--cores", "2",
           "--configfile", *configs]
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


def overlay(path: Path, dataset: dict, saliency_dir: Path, keep_maps: bool, **extra) -> str:
    path.write_text(yaml.safe_dump({
        "shards": 2,
        "dataset": dataset,
        "saliency": {"source": "precomputed", "precomputed_dir": str(saliency_dir)},
        # one map shard in flight: infer_cams of shard 1 waits for shard 0's readers
        "classifier": {"train": {"decay_iterations": 2},
                       "infer": {"map_dtype": "uint8", "keep_maps": keep_maps, "maps_in_flight": 1}},
        **extra}))
    return str(path)


@pytest.mark.slow
def test_tiny_coco_runs_from_its_archives_to_the_tables(tmp_path):
    """The whole run, killed (SIGKILL) while shard 0's map readers run and resumed; then the pseudo-mask
    stages again with the map files kept (classifier.infer.keep_maps), from the same data and classifiers:
    the same tables either way."""
    zips = build_archives(tmp_path / "served")
    for image_id in TRAIN_IDS + VAL_IDS:
        write_gray_png(tmp_path / "saliency" / f"{image_id}.png", foreground(image_id))
    run, kept = tmp_path / "run", tmp_path / "kept"
    with ArchiveServer({p.name: p for p in zips.values()}) as srv:
        dataset = coco_overlay(srv.url, zips)
        dataset["coco14"]["masks"] = "convert"
        configs = [str(TINY), overlay(tmp_path / "coco.yaml", dataset, tmp_path / "saliency", False,
                                      deeplab={"methods": ["eps"]})]
        run_until_killed(run, configs, "logs/make_pseudo_masks/eps_0.log")
        assert (run / "results/shards/cams/eps/0").exists() and not (run / "results/tables/miou.csv").exists()
        snakemake("--unlock", "--configfile", *configs, workdir=run)
        snakemake("--cores", "2", "--configfile", *configs, workdir=run, timeout=1500)
        assert sorted(name for name, _ in srv.requests) == sorted(p.name for p in zips.values())  # each once
        # the maps kept: from the same data and classifiers (hard links, their times kept), the pseudo stages
        for part in ("resources", "results/classifier", "results/saliency"):
            shutil.copytree(run / part, kept / part, copy_function=os.link)
        keep = [str(TINY), overlay(tmp_path / "keep.yaml", dataset, tmp_path / "saliency", True,
                                   evaluation={"tables": {"miou": ["pseudo", "pseudo_crf"]}})]
        snakemake(*PSEUDO_TARGETS, "results/cams/cam", "results/cams/eps", "--cores", "2", "--configfile", *keep,
                  workdir=kept, timeout=900)
    pseudo = ["pseudo", "pseudo_crf"]
    for name in ("miou.csv", "miou_per_class.csv"):
        ran, held = (pd.read_csv(w / "results/tables" / name) for w in (run, kept))
        assert ran[ran.stage.isin(pseudo)].to_csv(index=False) == held.to_csv(index=False), name
    assert (run / "results/tables/cam_thresholds.csv").read_bytes() == (kept / "results/tables/cam_thresholds.csv"
                                                                         ).read_bytes()
    # kept: every map merged into results/cams (uint8, classifier.infer.map_dtype); deleted: no map left
    for classifier in ("cam", "eps"):
        assert sorted(p.stem for p in (kept / "results/cams" / classifier).glob("*.npz")) == sorted(TRAIN_IDS)
        assert not (run / "results/cams" / classifier).exists()
        assert not list((run / "results/shards/cams" / classifier).glob("*"))
    with np.load(kept / "results/cams/eps" / f"{TRAIN_IDS[0]}.npz") as maps:
        assert maps["maps"].dtype == np.uint8 and maps["peak"].dtype == np.float32
    # the conversion: one job per split x shard, merged by hard links into the prepared masks
    raw = run / ROOT / "coco2014"
    shards = {f"{s}/{k}": sorted(p.stem for p in (raw / "converted_shards" / s / str(k)).glob("*.png"))
              for s in ("train", "val") for k in (0, 1)}
    assert sorted(sum(shards.values(), [])) == TRAIN_IDS + VAL_IDS and len(shards["train/0"]) == 2
    prepared = run / ROOT / "prepared"
    for image_id, expected in EXPECTED.items():
        mask = prepared / PREPARED["masks"] / f"{image_id}.png"
        np.testing.assert_array_equal(read_label_png(mask), np.array(expected, np.uint8), err_msg=image_id)
        assert mask.stat().st_ino == (raw / "converted" / f"{image_id}.png").stat().st_ino
    assert (prepared / PREPARED["train"]).read_text().split() == TRAIN_IDS
    assert (prepared / PREPARED["train_aug"]).read_text().split() == TRAIN_IDS
    assert (prepared / PREPARED["val"]).read_text().split() == VAL_IDS
    assert (prepared / PREPARED["classes"]).read_text() == "".join(f"{c}\n" for c in CLASSES)
    labels = pd.read_csv(prepared / PREPARED["labels"]).set_index("id")
    assert list(labels.columns) == CLASSES and {i: r.tolist() for i, r in labels.iterrows()} == LABELS
    assert not (prepared / PREPARED["boundaries"]).exists() and not (prepared / PREPARED["heldout"]).exists()
    # the tables COCO can feed, and only those
    miou = pd.read_csv(run / "results/tables/miou.csv")
    assert set(zip(miou.method, miou.stage)) == {(m, s) for m in ("cam", "cam_sal", "eps")
                                                 for s in ("pseudo", "pseudo_crf")} | {
        ("eps", "deeplab"), ("eps", "deeplab_crf")}
    assert (miou[miou.stage.str.startswith("pseudo")].images == 4).all()
    assert (miou[miou.stage.str.startswith("deeplab")].images == 1).all()
    assert check_tables(run, load_config(*configs)) == {"miou.csv": len(miou)}  # recomputed from the PNGs
    tables = sorted(p.name for p in (run / "results/tables").iterdir())
    assert "boundary.csv" not in tables and "confusion_ratio.csv" not in tables
    # stored once: each archive deleted once its folder was checked, each map shard once read (above);
    # the decay horizon in the trainer
    assert not list((run / "resources/downloads").glob("*.zip")) and (raw / "val2014.manifest.json").exists()
    manifest = json.loads((raw / "train2014.manifest.json").read_text())
    assert manifest == {"archive": "train2014.zip", "member": "train2014", "files": len(TRAIN_IDS) + 1,
                        "bytes": manifest["bytes"]} and manifest["bytes"] > 0
    # the instances files went once the conversion and prepare_dataset had read them; the image folders stay
    assert not (raw / "annotations").exists() and (raw / "annotations.manifest.json").exists()
    extracted = {p.stem for p in (raw / "train2014").glob("*.jpg")}
    assert set(TRAIN_IDS) < extracted and len(extracted) == len(TRAIN_IDS) + 1  # + the archive's unannotated image
    assert not (run / "results/cams").exists() and not list((run / "results/shards/cams").glob("*/*"))
    lrs = pd.read_csv(run / "results/classifier/cam/loss.csv").lr.tolist()
    assert lrs == pytest.approx([0.05, 0.05 * 0.5 ** 0.9, 0.05 * 0.5 ** 0.9, 0.05 * 0.5 ** 0.9], rel=1e-6)
    # done means done: nothing is downloaded or converted again; a table COCO cannot feed says why
    again = snakemake("-n", "--configfile", *configs, workdir=run)
    assert "Nothing to be done" in again.stdout + again.stderr
    again = snakemake("-n", *PSEUDO_TARGETS, "--configfile", *keep, workdir=kept)
    assert "Nothing to be done" in again.stdout + again.stderr
    asked = snakemake("-n", "results/tables/boundary.csv", "--configfile", *configs, workdir=run, check=False)
    assert asked.returncode != 0
    assert ("results/tables/boundary.csv needs boundary annotations (SBD-style prepared/boundaries/), which data "
            "source 'coco14' does not provide; its tables are miou") in asked.stdout + asked.stderr


def plan(tmp_path: Path, *args: str) -> tuple[dict[str, int], str]:
    """The job counts and the text of a dry run."""
    proc = snakemake("-n", *args, workdir=tmp_path)
    assert "This was a dry-run" in proc.stdout
    return job_counts(proc.stdout), proc.stdout


def test_coco14_yaml_plans_the_whole_run_from_nothing(tmp_path):
    """An empty working directory: every archive, mask, map and weight file comes from a rule."""
    counts, out = plan(tmp_path, "--configfile", str(COCO14))
    assert counts["download_coco14"] == 3 and counts["extract_coco14"] == 2
    assert counts["extract_coco14_annotations"] == 1
    downloads = {}
    for name in ("train2014.zip", "val2014.zip", "annotations_trainval2014.zip"):
        job = re.search(rf"^rule download_coco14:\n((?:    .*\n)*?)\s+output: resources/downloads/{re.escape(name)}$",
                        out, re.M)
        assert job, name
        downloads[name] = re.findall(r"^\s+input: (.*)$", job.group(1), re.M)
    # val2014.zip waits for train2014's folder to be checked (and its archive deleted): one archive at a time
    assert downloads == {"train2014.zip": [], "val2014.zip": [f"{ROOT}/coco2014/train2014.manifest.json"],
                         "annotations_trainval2014.zip": []}
    keep = tmp_path / "keep.yaml"
    keep.write_text(yaml.safe_dump({"dataset": {"coco14": {"keep_archives": True}}}))
    _, kept = plan(tmp_path, "--configfile", str(COCO14), str(keep))
    assert not re.search(r"^\s+input: .*manifest", kept, re.M)  # archives kept: no reason to wait
    fetched = set(re.findall(r"^\s+output: resources/weights/([^/\s]+)$", out, re.M))
    assert fetched == {"eps_coco14_masks.zip", "eps_pfan_saliency_coco14.zip",
                       "ilsvrc-cls_rna-a1_cls1000_ep-0001.params", "resnet101-63fe2227.pth"}
    assert counts["extract_coco14_masks"] == 1 and "convert_coco14" not in counts  # masks: released
    assert counts["train_classifier"] == 2 and counts["infer_cams"] == 2 * 16  # 16 shards per classifier
    assert counts["train_segmentation"] == 3 and counts["table_miou"] == 1
    assert not {"table_boundary", "table_confusion_ratio", "download_context", "train_saliency"} & set(counts)
    converted, _ = plan(tmp_path, "--configfile", str(COCO14), str(REPO / "config" / "coco14-convert.yaml"))
    assert converted["convert_coco14"] == 2 * 16 and converted["merge_coco14_masks"] == 1
    assert "extract_coco14_masks" not in converted


def test_released_coco_checkpoints_plan_only_what_their_table_reads(tmp_path):
    counts, out = plan(tmp_path, "results/tables/released_checkpoints.csv", "--configfile", str(COCO14),
                       str(REPO / "config" / "coco14-released.yaml"))
    assert counts["import_classifier"] == 2 and "train_classifier" not in counts
    assert "train_segmentation" not in counts and "refine_crf" not in counts
    assert {"eps_coco14_checkpoint_cls.pth", "cam_coco14_checkpoint_cls.pth"} <= set(
        re.findall(r"^\s+output: resources/weights/([^/\s]+)$", out, re.M))


@pytest.mark.parametrize("table, what", [("boundary", "boundary annotations"), ("confusion_ratio", "scene labels")])
def test_asking_coco14_for_a_table_it_cannot_feed_stops_with_one_line(tmp_path, table, what):
    proc = snakemake("-n", f"results/tables/{table}.csv", "--configfile", str(COCO14), workdir=tmp_path, check=False)
    assert proc.returncode != 0
    line = next(x for x in (proc.stdout + proc.stderr).splitlines() if f"results/tables/{table}.csv needs" in x)
    assert what in line and line.strip().endswith("data source 'coco14' does not provide; its tables are miou")
