"""`make bench-jobs`: peak memory and throughput of a config's heavy jobs → their `mem_mb` / `runtime`.

The SLURM requests of the paper setting (config/voc12.yaml) must come from measurements, not
guesses. This bench runs the real entry point of each heavy job (train_saliency, train_classifier,
infer_cams' multi-scale maps, train_segmentation) with the config's recipe (backbone, crop, batch,
DataLoader workers, AMP) on a synthetic dataset at VOC scale, and records per job and AMP mode:

- steady-state speed: two runs of `warmup` and `warmup + iterations` steps; the difference of
  their wall times cancels model building, worker start-up and cuDNN autotuning;
- start-up: what the short run spent beyond its steps at that speed;
- peak host memory: the proportional set size (PSS) of this process and all its children (the
  DataLoader workers), sampled every 0.1 s; PSS counts a page shared by k processes as 1/k, as a
  cgroup's memory accounting roughly does;
- peak CUDA memory: torch's max_memory_allocated / max_memory_reserved.

From them it derives what a job of the full recipe needs (`derive_resources`): runtime = start-up +
the full run at the measured speed, times `margin`; mem_mb = peak host memory times `margin`.
Weights are random and stay so (learning rate 0: speed and memory do not depend on either), and
nothing is downloaded.
It measures; it asserts nothing. docs/experiments.md says how its numbers were used.
"""

from __future__ import annotations

import copy
import math
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

import pandas as pd
import torch

from wsss.core.io import atomic_path, read_id_list, write_id_list
from wsss.data.layout import PREPARED

JOBS = ("train_saliency", "train_classifier", "infer_cams", "train_segmentation")


class PeakMemory:
    """Peak PSS (MB) of this process + its descendants while the block runs (`host_mb`), of the
    descendants alone (`workers_mb`: DataLoader workers, whatever the device), and the CUDA peaks."""

    def __init__(self, interval: float = 0.1):
        self.interval, self.host_mb, self.workers_mb = interval, 0.0, 0.0
        self._stop = threading.Event()

    @staticmethod
    def _pss(proc) -> int:
        import psutil

        try:
            return proc.memory_full_info().pss
        except (psutil.Error, AttributeError):  # a worker that just exited; no PSS off Linux
            try:
                return proc.memory_info().rss
            except psutil.Error:
                return 0

    def _sample(self) -> tuple[float, float]:
        import psutil

        me = psutil.Process()
        try:
            children = me.children(recursive=True)
        except psutil.Error:
            children = []
        workers = sum(self._pss(p) for p in children)
        return (self._pss(me) + workers) / 2**20, workers / 2**20

    def _update(self) -> None:
        host, workers = self._sample()
        self.host_mb, self.workers_mb = max(self.host_mb, host), max(self.workers_mb, workers)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._update()
            self._stop.wait(self.interval)

    def __enter__(self) -> "PeakMemory":
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._update()
        cuda = torch.cuda.is_available()
        self.cuda_allocated_mb = torch.cuda.max_memory_allocated() / 2**20 if cuda else 0.0
        self.cuda_reserved_mb = torch.cuda.max_memory_reserved() / 2**20 if cuda else 0.0


def _timed(run: Callable[[int], None], steps: int) -> tuple[float, PeakMemory]:
    with PeakMemory() as peak:
        t0 = time.perf_counter()
        run(steps)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
    return seconds, peak


def measure(run: Callable[[int], None], warmup: int, steps: int) -> dict:
    """Steady speed (steps/s), start-up (s) and peaks of `run(n)` (one job doing n steps)."""
    short, _ = _timed(run, warmup)
    long, peak = _timed(run, warmup + steps)
    rate = steps / max(long - short, 1e-9)
    return {"steps_per_s": round(rate, 4), "startup_s": round(max(short - warmup / rate, 0.0), 2),
            "seconds": round(long, 2), "peak_host_mb": round(peak.host_mb), "peak_workers_mb": round(peak.workers_mb),
            "peak_cuda_allocated_mb": round(peak.cuda_allocated_mb),
            "peak_cuda_reserved_mb": round(peak.cuda_reserved_mb)}


def make_dataset(root: Path, image_size: int, num_images: int, processes: int = 1) -> Path:
    """A synthetic dataset of `num_images` training images of `image_size` px (VOC: at most 500 px)
    in the prepared layout, its DUTS-layout saliency set and ground-truth-foreground saliency maps."""
    from wsss.config.load import load_config
    from wsss.core.schema import REPO
    from wsss.data.sources.synthetic.generate import SyntheticConfig, synthesize_dataset
    from wsss.data.sources.voc.prepare import prepare_dataset
    from wsss_dev.bench.harness import _saliency_from_masks

    embedded = load_config(REPO / "config" / "config.yaml")  # the embedded default's classes and scenes
    base = SyntheticConfig(**{**embedded["dataset"]["synthetic"], "seed": 0})
    scale = image_size / base.image_size
    sized = {k: tuple(round(v * scale) for v in getattr(base, k)) for k in
             ("object_size", "large_object_size", "context_height")}
    cfg = SyntheticConfig(**{**base.__dict__, **sized, "image_size": image_size, "num_train": num_images,
                             "num_val": 2, "num_saliency": num_images})
    classes = embedded["dataset"]["classes"]
    synthesize_dataset(root / "VOCdevkit", root / "benchmark_RELEASE", root / "DUTS-TR", root / "context",
                       classes, cfg, processes=processes)
    prepared = root / "prepared"
    prepare_dataset(root / "VOCdevkit", root / "benchmark_RELEASE", prepared, classes, processes=processes)
    _saliency_from_masks(prepared, read_id_list(prepared / PREPARED["train_aug"]), root / "saliency")
    return prepared


def _runners(cfg: dict, prepared: Path, tmp: Path, amp: bool, device: str) -> dict:
    """job → run(n): the job's real entry point doing n training steps (or n CAM images).

    Training runs at learning rate 0: from random weights (with frozen, identity BatchNorm) the
    paper's recipes diverge within a step or two, and a step costs the same at any rate (SGD
    still computes and applies its update)."""
    from wsss.config.settings import cam_inference, classifier_training, deeplab_training
    from wsss.methods import CLASSIFIERS
    from wsss.stages.infer_cams import infer_cams
    from wsss.stages.train_classifier import train_classifier
    from wsss.stages.train_saliency import train_saliency
    from wsss.stages.train_segmentation import train_segmentation

    images, labels, ids = (prepared / PREPARED[k] for k in ("images", "labels", "train_aug"))

    def saliency(n: int) -> None:
        sal = copy.deepcopy(cfg["saliency"])
        model = dict(sal["model"], backbone_weights=None)
        train = dict(sal["train"])
        train.update(iterations=n, checkpoint_every=0, log_every=0, amp=amp, lr=0.0)
        train_saliency(tmp.parent / "DUTS-TR", tmp / "pfan.pt", model=model, train_cfg=train,
                       holdout=sal.get("holdout", 0.15), seed=0, device=device)

    def classifier(n: int) -> None:
        section = classifier_training(copy.deepcopy(cfg["classifier"]), CLASSIFIERS["eps"])
        section["model"]["pretrained"] = None
        section["train"].update(iterations=n, checkpoint_every=0, log_every=0, amp=amp, lr=0.0)
        train_classifier(CLASSIFIERS["eps"], images, labels, ids, tmp / "cls.pt", section,
                         saliency_dir=tmp.parent / "saliency",
                         seed=0, device=device)

    def cams(n: int) -> None:
        model_file = tmp / "cls.pt"
        if not model_file.exists():  # a model of the config's backbone (one step from random weights)
            classifier(1)
        ids_n = tmp / f"cams_ids_{n}.txt"
        write_id_list(ids_n, read_id_list(ids)[:n])
        out = Path(tempfile.mkdtemp(dir=tmp)) / "maps"
        params = cam_inference(cfg, CLASSIFIERS["eps"])
        infer_cams(model_file, images, labels, ids_n, out, params, device=device)

    def segmentation(n: int) -> None:
        deeplab = dict(deeplab_training(cfg), iterations=n, checkpoint_every=0, log_every=0, amp=amp,
                       init_weights=None, lr=0.0)
        train_segmentation(ids, images, prepared / PREPARED["masks"], labels, tmp / "seg.pt", None, None, deeplab,
                           seed=0, device=device)

    return {"train_saliency": saliency, "train_classifier": classifier, "infer_cams": cams,
            "train_segmentation": segmentation}


def full_work(cfg: dict, job: str, num_train_aug: int) -> int:
    """Steps of the job in a full run: the recipe's iterations, or the images of one CAM shard."""
    if job == "infer_cams":
        return math.ceil(num_train_aug / cfg["shards"])
    section = {"train_saliency": cfg["saliency"]["train"], "train_classifier": cfg["classifier"]["train"],
               "train_segmentation": cfg["deeplab"]}[job]
    return int(section["iterations"])


def derive_resources(row: dict, work: int, margin: float = 1.5) -> dict:
    """runtime (min) and mem_mb of a full job from one measured row, each with `margin` headroom:
    runtime rounded up to 10 min, mem_mb up to 500 MB (at least 1000)."""
    minutes = margin * (row["startup_s"] + work / row["steps_per_s"]) / 60
    return {"runtime": int(10 * math.ceil(minutes / 10)),
            "mem_mb": int(max(1000, 500 * math.ceil(margin * row["peak_host_mb"] / 500)))}


def bench_jobs(cfg: dict, out_csv: str | os.PathLike, *, jobs=JOBS, image_size: int = 500, num_images: int = 64,
               warmup: int = 3, iterations: int = 20, cam_images: int = 20, num_train_aug: int = 10582,
               margin: float = 1.5) -> pd.DataFrame:
    """Measure every job of `jobs` under `cfg` (AMP on and off on CUDA); write one CSV row each."""
    from wsss.core.device import resolve_device
    from wsss_dev.bench.harness import machine_info

    device = cfg.get("device", "auto")
    on_cuda = resolve_device(device).type == "cuda"
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_jobs.") as root:
        root = Path(root)
        prepared = make_dataset(root, image_size, num_images)
        work_dir = root / "work"
        work_dir.mkdir()
        for amp in ((True, False) if on_cuda else (False,)):
            runners = _runners(cfg, prepared, work_dir, amp, device)
            for job in jobs:
                steps = cam_images if job == "infer_cams" else iterations
                row = {"job": job, "amp": amp, "device": str(resolve_device(device)), "image_size": image_size,
                       **measure(runners[job], warmup, steps)}
                work = full_work(cfg, job, num_train_aug)
                row.update(full_steps=work, **derive_resources(row, work, margin), margin=margin)
                rows.append(row)
    table = pd.DataFrame([{**row, **machine_info()} for row in rows])
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    return table


# The config section holding each job's AMP switch.
AMP_SECTIONS = {"train_saliency": ("saliency", "train"), "train_classifier": ("classifier", "train"),
                "infer_cams": ("classifier", "infer"), "train_segmentation": ("deeplab",)}


def suggested_config(table: pd.DataFrame, cfg: dict) -> dict:
    """The derived runtime / mem_mb as a `jobs` config fragment (threads kept from `cfg`), from the
    rows of each job's configured AMP mode."""
    from wsss.config.settings import job_size

    jobs: dict = {}
    for job, path in AMP_SECTIONS.items():
        section = cfg
        for key in path:
            section = section[key]
        rows = table[table["job"] == job]
        if rows.empty:
            continue
        amp = bool(section.get("amp", True)) and bool(rows["amp"].any())
        row = rows[rows["amp"] == amp].iloc[0]
        jobs[job] = {"threads": job_size(cfg, job)["threads"], "mem_mb": int(row["mem_mb"]),
                     "runtime": int(row["runtime"])}
    return {"jobs": jobs}


def main(argv: list[str] | None = None) -> int:
    import argparse

    import yaml

    from wsss.config.load import load_config
    from wsss.core.runlog import log_to

    ap = argparse.ArgumentParser(prog="python -m wsss_dev.bench.jobs", description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="config/voc12.yaml", help="the config whose jobs to size")
    ap.add_argument("--out", default="results/bench/jobs.csv", help="CSV to write (the fragment goes beside it, .yaml)")
    ap.add_argument("--jobs", nargs="+", default=list(JOBS), choices=JOBS)
    ap.add_argument("--image-size", type=int, default=500, help="synthetic image side (VOC: at most 500)")
    ap.add_argument("--images", type=int, default=64, help="training images of the synthetic set")
    ap.add_argument("--warmup", type=int, default=3, help="steps of the short run")
    ap.add_argument("--iterations", type=int, default=20, help="extra steps of the long run")
    ap.add_argument("--cam-images", type=int, default=20, help="extra images of the long infer_cams run")
    ap.add_argument("--margin", type=float, default=1.5, help="headroom factor on runtime and memory")
    ap.add_argument("--train-aug", type=int, default=10582, help="ids CAMs are inferred for (VOC train_aug)")
    args = ap.parse_args(argv)
    cfg = load_config(args.config)
    with log_to(None):
        table = bench_jobs(cfg, args.out, jobs=args.jobs, image_size=args.image_size, num_images=args.images,
                           warmup=args.warmup, iterations=args.iterations, cam_images=args.cam_images,
                           num_train_aug=args.train_aug, margin=args.margin)
    fragment = suggested_config(table, cfg)
    with atomic_path(Path(args.out).with_suffix(".yaml")) as tmp:
        tmp.write_text(f"# derived by python -m wsss_dev.bench.jobs --config {args.config} (margin {args.margin})\n"
                       + yaml.safe_dump(fragment, sort_keys=False))
    print(table[["job", "amp", "device", "steps_per_s", "startup_s", "peak_host_mb", "peak_workers_mb",
                 "peak_cuda_reserved_mb",
                 "full_steps", "runtime", "mem_mb"]].to_string(index=False))
    print(yaml.safe_dump(fragment, sort_keys=False))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
