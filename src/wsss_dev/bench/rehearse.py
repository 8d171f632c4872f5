"""A coco14 run rehearsed at real image size (`make rehearse-coco`): disk peak and job sizes, projected.

    python -m wsss_dev.bench.rehearse --images 2400 --workdir /tmp/rehearse --out docs/results/coco_rehearsal.csv

A synthetic MS-COCO 2014 (wsss_dev.bench.coco: 640x480 JPEGs, instances JSONs of the real structure, 80
categories) is zipped as the three real archives and served on a loopback HTTP server; the workflow then
runs config/coco14.yaml with 16 shards through its real rules: download, extraction (checked, archives
deleted), conversion, merge, prepare, saliency import (maps drawn from the objects: `precomputed`),
infer_cams, pseudo-masks, the CAM sweep, the CRF, DeepLab inference, evaluation, tables.
Stand-ins (rehearse.yaml beside the CSV says which keys): the classifier and DeepLab are the embedded
default's small networks trained for one iteration, maps at scale 1 without flip (the same files:
full-size uint8 maps of the image's classes); DeepLab for one method (COCO's three run the same jobs).
The dense CRF costs seconds per 640x480 image, so its jobs (and the evaluation they feed) see a subset:
after prepare_dataset the `train` list (the CRF's and the pseudo tables' split) keeps --crf-train ids and
`val` --crf-val ids; every other per-image stage sees all images.

Measured: du of resources/ and results/ every --interval s (each inode once; by kind of file), and each
job's peak RSS and wall time (its Snakemake benchmark file). Projected to 82,081 train + 40,137 val
images: file counts scale to the full run; the bytes of a map file, pseudo-mask, CRF mask and DeepLab
prediction are wsss_dev.bench.footprint's brackets (docs/results/coco_footprint.csv: smooth, noisy),
the other files' the rehearsal's own. Outputs: <out> (the figures), <out>.jobs.csv (per rule, and the
`jobs` sizes derived from it), <out>.disk.csv (the sampled timeline).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import yaml

from wsss.data.sources.coco14.prepare import ARCHIVES
from wsss_dev.bench.coco import NUM_CLASSES, write_synthetic_split
from wsss_dev.bench.footprint import TRAIN, VAL

REPO = Path(__file__).resolve().parents[3]
STAND_IN_RULES = ("train_classifier", "infer_cams", "train_segmentation", "infer_segmentation")
# Kinds of file, by the first path prefix (relative to the work dir) that holds it; inodes already counted
# (hard links: merged shards, prepared images) count once, under the kind walked first.
KINDS = [("archive_train2014", "resources/downloads/train2014.zip"),
         ("archive_val2014", "resources/downloads/val2014.zip"),
         ("archive_annotations", "resources/downloads/annotations_trainval2014.zip"),
         ("archive_train2014", "resources/downloads/train2014.zip.part"),
         ("archive_val2014", "resources/downloads/val2014.zip.part"),
         ("archive_annotations", "resources/downloads/annotations_trainval2014.zip.part"),
         ("raw_train2014", "resources/coco14/coco2014/train2014"), ("raw_val2014", "resources/coco14/coco2014/val2014"),
         ("raw_annotations", "resources/coco14/coco2014/annotations"),
         ("label", "resources/coco14/coco2014/converted_shards"), ("label", "resources/coco14/coco2014/converted"),
         ("raw_partial", "resources/coco14/coco2014"),
         ("maps_cam", "results/shards/cams/cam"), ("maps_cam", "results/cams/cam"),
         ("maps_eps", "results/shards/cams/eps"), ("maps_eps", "results/cams/eps"),
         ("pseudo", "results/shards/pseudo_masks/"), ("pseudo", "results/pseudo_masks/"),
         ("crf", "results/shards/pseudo_masks_crf"), ("crf", "results/pseudo_masks_crf"),
         ("pred", "results/deeplab/eps/pred"), ("pred", "results/deeplab/eps/pred_crf"),
         ("label", "resources/coco14"), ("saliency", "results/saliency"),
         ("eval", "results/eval"), ("other", "resources"), ("other", "results")]
# The footprint bracket's bytes per file (docs/results/coco_footprint.csv columns) for the kinds whose
# content depends on the classifier: {v} is smooth or noisy.
BRACKET = {"maps_cam": "{v}_cam_uint8_npz", "maps_eps": "{v}_eps_uint8_npz", "pseudo": "{v}_pseudo_png",
           "crf": "crf_png", "pred": "pred_png"}


def build(data: Path, images: int, seed: int = 0) -> None:
    """The three archives (train2014.zip, val2014.zip, annotations_trainval2014.zip) of `images` synthetic
    images, two thirds train as in COCO, and their saliency maps (`data`/saliency)."""
    raw, sal = data / "raw", data / "saliency"
    n_train = round(images * TRAIN / (TRAIN + VAL))
    write_synthetic_split(raw, n_train, seed, split="train2014", saliency=sal)
    write_synthetic_split(raw, images - n_train, seed + 1, split="val2014", saliency=sal)
    for archive in ARCHIVES.values():
        names = archive.names or sorted(p.name for p in (raw / archive.member).iterdir())
        with zipfile.ZipFile(data / os.path.basename(archive.url), "w", zipfile.ZIP_DEFLATED) as zf:  # as the real
            for name in names:  # ones: JPEGs deflated too
                zf.write(raw / archive.member / name, f"{archive.member}/{name}")
    shutil.rmtree(raw)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # one line a request would clutter the run's output
        pass


@contextmanager
def serve(folder: Path, port: int = 0):
    """A loopback HTTP server of `folder` (on `port`, or any free one); yields its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", port), partial(_QuietHandler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def overlay(url: str, zips: dict[str, Path], saliency: Path, keep_maps: bool, shards: int, eval_shards: int) -> dict:
    """config/coco14.yaml's run on the synthetic archives, with the stand-ins."""
    md5 = {key: hashlib.md5(p.read_bytes()).hexdigest() for key, p in zips.items()}
    coco = {f"{key}_{what}": (f"{url}/{p.name}" if what == "url" else md5[key])
            for key, p in zips.items() for what in ("url", "md5")}
    small_classifier = {"backbone": "small", "width": 8, "pretrained": None, "freeze_bn": False,
                        "frozen_blocks": [], "head_init": "normal"}
    small_deeplab = {"backbone": "small", "width": 16, "small_output_stride": 4, "aspp_rates": [2, 4, 6, 8],
                     "multi_scale": False, "freeze_bn": False, "init_weights": None}
    once = {"iterations": 1, "batch_size": 2, "num_workers": 0, "checkpoint_every": 1, "log_every": 1}
    return {
        "shards": shards,
        "device": "cpu",
        "dataset": {"classes": [f"class{c:02d}" for c in range(NUM_CLASSES)],
                    "coco14": {**coco, "masks": "convert"}},
        "saliency": {"source": "precomputed", "precomputed_dir": str(saliency)},
        "classifier": {**small_classifier, "train": {**once, "decay_iterations": 1, "crop_size": 64,
                                                     "scale_range": [56, 72]},
                       "infer": {"scales": [1.0], "flip": False, "num_workers": 0, "keep_maps": keep_maps}},
        "deeplab": {**small_deeplab, **once, "methods": ["eps"], "crop_size": 56, "scale_range": [48, 80],
                    "infer_scales": [1.0], "infer_flip": False},
        "evaluation": {"shards": eval_shards},
        # the stand-ins run one process each, side by side; the CPU stages keep config/coco14.yaml's sizes
        "jobs": {rule: {"threads": 1, "mem_mb": 2000, "runtime": 60} for rule in STAND_IN_RULES},
    }


def walk(workdir: Path) -> dict[str, list[int]]:
    """kind -> [allocated bytes, files] under the work dir, each inode once."""
    seen, out = set(), {kind: [0, 0] for kind, _ in KINDS}
    for kind, prefix in KINDS:
        top = workdir / prefix
        if top.is_file():
            walked = [(str(top.parent), [], [top.name])]
        elif top.is_dir():
            walked = os.walk(top)
        else:
            continue
        for folder, _, files in walked:
            for name in files:
                try:
                    st = os.lstat(os.path.join(folder, name))
                except FileNotFoundError:  # deleted while walked
                    continue
                if (st.st_dev, st.st_ino) in seen:
                    continue
                seen.add((st.st_dev, st.st_ino))
                out[kind][0] += st.st_blocks * 512
                out[kind][1] += 1
    return out


class Sampler(threading.Thread):
    """du of the work dir by kind every `interval` s, into `rows`."""

    def __init__(self, workdir: Path, interval: float, csv: Path):
        super().__init__(daemon=True)
        self.workdir, self.interval, self.rows, self.start_time = workdir, interval, [], time.monotonic()
        self.csv, self.done, self.phase = csv, threading.Event(), "data"

    def sample(self, phase: str) -> None:
        row = {"t_s": round(time.monotonic() - self.start_time, 1), "phase": phase}
        for kind, (size, files) in walk(self.workdir).items():
            row[f"{kind}_bytes"], row[f"{kind}_files"] = size, files
        self.rows.append(row)
        if len(self.rows) % 10 == 1 or phase == "end":  # a run stopped early keeps its samples
            pd.DataFrame(self.rows).to_csv(self.csv, index=False)

    def run(self) -> None:
        while not self.done.wait(self.interval):
            self.sample(self.phase)


def snakemake(workdir: Path, configs: list[Path], cores: int, *targets: str, log: Path) -> None:
    """One Snakemake run, its output into `log` (its tail printed if it fails)."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "workflow/Snakefile"), "--directory", str(workdir),
           "--cores", str(cores), "--configfile", *map(str, configs), "--", *targets]
    with open(log, "w") as fh:
        proc = subprocess.run(cmd, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT,
                              env=dict(os.environ, OMP_NUM_THREADS="1"))
    if proc.returncode:
        sys.exit(f"snakemake failed ({proc.returncode}); the end of {log}:\n" + "".join(open(log).readlines()[-40:]))


def trim_lists(prepared: Path, crf_train: int, crf_val: int, shards: int) -> dict[str, int]:
    """Keep `crf_train` ids of `train` (the CRF's split) and `crf_val` of `val`, as many in each shard."""
    from wsss.core.sharding import shard_ids

    counts = {}
    for name, keep in (("train", crf_train), ("val", crf_val)):
        path = prepared / "lists" / f"{name}.txt"
        ids = path.read_text().split()
        kept = sorted(i for k in range(shards) for i in shard_ids(ids, k, shards)[:max(1, keep // shards)])
        path.write_text("".join(f"{i}\n" for i in kept))
        counts[name] = len(kept)
    return counts


def main(argv: list[str] | None = None) -> int:
    from wsss_dev.bench.rehearse_report import report

    ap = argparse.ArgumentParser(prog="python -m wsss_dev.bench.rehearse", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=2400, help="synthetic images, train and val")
    ap.add_argument("--crf-train", type=int, default=16, help="train ids the CRF and the pseudo tables keep")
    ap.add_argument("--crf-val", type=int, default=16, help="val ids DeepLab's inference and CRF keep")
    ap.add_argument("--keep-maps", action="store_true", help="classifier.infer.keep_maps true")
    ap.add_argument("--shards", type=int, default=16, help="shards (config/coco14.yaml's 16; fewer for a quick check)")
    ap.add_argument("--eval-shards", type=int, default=4, help="evaluation.shards: the scored subsets are small")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--report-only", action="store_true", help="redo the figures of a kept work dir")
    ap.add_argument("--resume", action="store_true", help="a kept work dir whose data stages are done: the rest")
    ap.add_argument("--interval", type=float, default=3.0, help="seconds between two du samples")
    ap.add_argument("--workdir", type=Path, required=True, help="scratch (deleted at the end unless --keep)")
    ap.add_argument("--keep", action="store_true", help="keep the work dir")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    work = args.workdir.resolve()
    if args.report_only:
        facts = json.loads((work / "facts.json").read_text())
        report(work / "run", facts, pd.read_csv(work / "samples.csv"), args.out)
        return 0
    run, phase1 = work / "run", work / "data_phase.json"
    if not (args.resume and phase1.exists()):
        if work.exists():
            shutil.rmtree(work)
        started = time.monotonic()
        build(work / "data", args.images)
        build_s = time.monotonic() - started
        run.mkdir()
    zips = {key: work / "data" / os.path.basename(a.url) for key, a in ARCHIVES.items()}
    sampler = Sampler(run, args.interval, work / "samples.csv")
    # a resumed run serves on the same port: a changed URL is a changed param, which reruns the downloads
    port = json.loads(phase1.read_text()).get("port", 0) if args.resume and phase1.exists() else 0
    with serve(work / "data", port) as url:
        cfg = overlay(url, zips, work / "data/saliency", args.keep_maps, args.shards, args.eval_shards)
        configs = [REPO / "config/coco14.yaml", work / "rehearse.yaml"]
        configs[1].write_text(yaml.safe_dump(cfg, sort_keys=False))
        if args.resume and phase1.exists():  # the data stages are done: the rest again, after their samples
            done = json.loads(phase1.read_text())
            build_s, data_s, subset = done["build_s"], done["data_s"], done["subset"]
            earlier = pd.read_csv(work / "samples.csv")
            sampler.rows = earlier[earlier.phase == "data"].to_dict("records")
            sampler.start_time -= float(earlier.t_s[earlier.phase == "data"].max())
        else:
            sampler.start()
            t0 = time.monotonic()
            snakemake(run, configs, args.cores, "resources/coco14/prepared", log=work / "snakemake_data.log")
            data_s = time.monotonic() - t0
            subset = trim_lists(run / "resources/coco14/prepared", args.crf_train, args.crf_val, args.shards)
            phase1.write_text(json.dumps({"build_s": build_s, "data_s": data_s, "subset": subset,
                                          "port": int(url.rsplit(":", 1)[1])}))
        if not sampler.is_alive():
            sampler.start()
        sampler.phase = "run"
        t0 = time.monotonic()
        snakemake(run, configs, args.cores, log=work / "snakemake_run.log")
        run_s = time.monotonic() - t0
    sampler.done.set()
    sampler.join()
    sampler.sample("end")
    n_train = round(args.images * TRAIN / (TRAIN + VAL))
    facts = {"images": args.images, "train": n_train, "val": args.images - n_train, "crf_train": subset["train"],
             "crf_val": subset["val"], "shards": args.shards, "keep_maps": args.keep_maps, "cores": args.cores,
             "build_s": round(build_s), "data_s": round(data_s), "run_s": round(run_s),
             "archive_bytes": {key: p.stat().st_size for key, p in zips.items()}}
    (work / "facts.json").write_text(json.dumps(facts))
    report(run, facts, pd.DataFrame(sampler.rows), args.out)
    shutil.copy(configs[1], args.out.with_suffix(".yaml"))
    (args.out.with_suffix(".yaml")).write_text(
        "# The rehearsal's overlay on config/coco14.yaml (wsss_dev.bench.rehearse): stand-ins and the synthetic data\n"
        + configs[1].read_text().replace(str(work), "<workdir>"))
    if not args.keep:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
