"""`make bench`: every stage's throughput on the embedded benchmark → results/bench/bench.csv.

Rows: evaluation (1 vs N processes), dense CRF (1 vs N processes, `wsss_dev.bench.crf`), MS-COCO
conversion (1 vs N processes, `wsss_dev.bench.coco`: synthetic 640x480 images), CAM inference
(images/s, multi-scale + flip as configured), training (iterations/s of the classifier and of
DeepLab through the shared loop). Each row carries the machine description. The harness
measures; it asserts nothing: a bench that fails is recorded with its error and the others run.
Numbers are best-of-N wall times, pool and model start-up included, since a job pays them too.
"""

from __future__ import annotations

import copy
import logging
import os
import platform
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from wsss.core.io import atomic_path, read_id_list, read_label_png, write_gray_png
from wsss.data.layout import PREPARED
from wsss.methods import CLASSIFIERS

log = logging.getLogger(__name__)


def machine_info() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"host": platform.node(), "cpu": cpu, "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else ""}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_cam_inference(prepared: Path, cfg: dict, images: int, device: str) -> list[dict]:
    """Images/s of multi-scale + flip localization-map inference (randomly initialised EPS model:
    throughput does not depend on the weights)."""
    from wsss.config.settings import cam_inference
    from wsss.core.device import resolve_device
    from wsss.core.schema import from_section
    from wsss.data.datasets import WSSSDataset, read_labels_csv
    from wsss.models.classifier import build_classifier
    from wsss.stages.infer_cams import CamInferConfig, multiscale_maps

    dev = resolve_device(device)
    class_names, _ = read_labels_csv(prepared / PREPARED["labels"])
    ids = read_id_list(prepared / PREPARED["train"])[:images]
    torch.manual_seed(0)
    section = cfg["classifier"]
    model = build_classifier(CLASSIFIERS["eps"], len(class_names), section["backbone"], None,
                             section["width"]).to(dev).eval()
    infer = from_section(CamInferConfig, cam_inference(cfg, CLASSIFIERS["eps"]))
    dataset = WSSSDataset(ids, prepared / PREPARED["images"], prepared / PREPARED["labels"])
    use_amp = infer.amp and dev.type == "cuda"
    for k in range(min(2, len(ids))):  # warm-up: cuDNN autotuning, allocator
        multiscale_maps(model, dataset[k]["image"].to(dev), [0], infer, use_amp)
    _sync(dev)
    t0 = time.perf_counter()
    for k in range(len(ids)):
        item = dataset[k]
        present = torch.nonzero(item["label"] > 0.5).flatten().tolist()
        multiscale_maps(model, item["image"].to(dev), present, infer, use_amp)
    _sync(dev)
    seconds = time.perf_counter() - t0
    return [{"stage": "cam_inference", "device": str(dev), "images": len(ids), "seconds": round(seconds, 4),
             "images_per_s": round(len(ids) / seconds, 2), "scales": str(infer.scales), "flip": infer.flip}]


def _saliency_from_masks(prepared: Path, ids: list[str], out: Path) -> None:
    """Ground-truth foreground as saliency: lets the EPS trainer run without the saliency stage."""
    for i in ids:
        mask = read_label_png(prepared / PREPARED["masks"] / f"{i}.png")
        write_gray_png(out / f"{i}.png", ((mask > 0) & (mask < 255)).astype(np.float32))


def bench_training(prepared: Path, cfg: dict, iterations: int, device: str) -> list[dict]:
    """Iterations/s of the classifier (EPS) and of DeepLab, each a short run of the shared loop."""
    from wsss.config.settings import classifier_training, deeplab_training
    from wsss.core.device import resolve_device
    from wsss.stages.train_classifier import train_classifier
    from wsss.stages.train_segmentation import train_segmentation

    rows = []
    device_name = str(resolve_device(device))
    ids_file = prepared / PREPARED["train"]
    with tempfile.TemporaryDirectory(prefix="bench_train.") as tmp:
        tmp = Path(tmp)
        _saliency_from_masks(prepared, read_id_list(ids_file), tmp / "saliency")
        section = classifier_training(cfg["classifier"], CLASSIFIERS["eps"])  # as the rule reads it
        section["train"].update(iterations=iterations, checkpoint_every=0)
        t0 = time.perf_counter()
        train_classifier(CLASSIFIERS["eps"], prepared / PREPARED["images"], prepared / PREPARED["labels"], ids_file,
                         tmp / "cls.pt", section,
                         saliency_dir=tmp / "saliency", loss_csv=tmp / "cls.csv", seed=0, device=device)
        seconds = time.perf_counter() - t0
        rows.append({"stage": "train_classifier_eps", "device": device_name, "iterations": iterations,
                     "batch_size": section["train"].get("batch_size"), "seconds": round(seconds, 4),
                     "iterations_per_s": round(iterations / seconds, 2)})
        rows.append(_bench_pfan(prepared, cfg, ids_file, tmp, iterations, device, device_name))
        deeplab = dict(deeplab_training(cfg), iterations=iterations, checkpoint_every=0)
        t0 = time.perf_counter()
        train_segmentation(ids_file, prepared / PREPARED["images"], prepared / PREPARED["masks"],
                           prepared / PREPARED["labels"], tmp / "seg.pt", None, tmp / "seg.csv", deeplab, seed=0,
                           device=device)
        seconds = time.perf_counter() - t0
        rows.append({"stage": "train_deeplab", "device": device_name, "iterations": iterations,
                     "batch_size": deeplab.get("batch_size"), "seconds": round(seconds, 4),
                     "iterations_per_s": round(iterations / seconds, 2)})
    return rows


def _bench_pfan(prepared: Path, cfg: dict, ids_file: Path, tmp: Path, iterations: int, device: str,
                device_name: str) -> dict:
    """PFAN training iterations/s on a DUTS-layout copy of the images with their foreground masks."""
    import shutil

    from wsss.data.duts import IMAGE_DIR, MASK_DIR
    from wsss.stages.train_saliency import train_saliency

    duts = tmp / "duts"
    ids = read_id_list(ids_file)
    for i in ids:
        (duts / IMAGE_DIR).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(prepared / PREPARED["images"] / f"{i}.jpg", duts / IMAGE_DIR / f"{i}.jpg")
    _saliency_from_masks(prepared, ids, duts / MASK_DIR)
    sal = copy.deepcopy(cfg["saliency"])
    train_cfg = dict(sal["train"])
    train_cfg.update(iterations=iterations, checkpoint_every=0)
    t0 = time.perf_counter()
    train_saliency(duts, tmp / "pfan.pt", model=sal["model"], train_cfg=train_cfg, holdout=sal.get("holdout", 0.15),
                   seed=0, device=device, loss_csv=tmp / "pfan.csv")
    seconds = time.perf_counter() - t0
    return {"stage": "train_saliency_pfan", "device": device_name, "iterations": iterations,
            "batch_size": train_cfg.get("batch_size"), "seconds": round(seconds, 4),
            "iterations_per_s": round(iterations / seconds, 2)}


def _guarded(name: str, fn: Callable[[], list[dict]]) -> list[dict]:
    log.info("bench: %s", name)
    # The 1-minute load average before the bench: a shared machine's other work skews timings.
    load = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else float("nan")
    t0 = time.perf_counter()
    try:
        rows = [dict(row, load_avg_before=load) for row in fn()]
    except Exception as err:  # measure what can be measured; record the rest
        log.error("bench %s failed:\n%s", name, traceback.format_exc())
        return [{"stage": name, "error": f"{type(err).__name__}: {err}"}]
    log.info("bench: %s done in %.1f s: %s", name, time.perf_counter() - t0, rows)
    return rows


def run_bench(cfg: dict, prepared: str | os.PathLike, out_csv: str | os.PathLike, processes: int = 2,
              eval_images: int = 1449, crf_images: int = 100, cam_images: int = 50,
              train_iterations: int = 30, coco_images: int = 200) -> pd.DataFrame:
    """Run every bench and write one CSV (one row per measurement, machine info on each row)."""
    from wsss_dev.bench.coco import bench_coco_conversion
    from wsss_dev.bench.crf import bench_crf
    from wsss_dev.bench.evaluation import bench_evaluation

    prepared = Path(prepared)
    device = cfg.get("device", "auto")
    counts = sorted({1, processes})
    rows = _guarded("evaluation", lambda: bench_evaluation(eval_images, processes=counts))
    crf_ids = read_id_list(prepared / PREPARED["train"])[:crf_images]
    crf = {k: v for k, v in cfg["crf"].items() if k != "unary"}
    rows += _guarded("crf", lambda: bench_crf(crf_ids, prepared / PREPARED["images"], prepared / PREPARED["masks"],
                                              processes=counts, crf=crf, repeats=2))
    rows += _guarded("coco_conversion", lambda: bench_coco_conversion(coco_images, processes=counts))
    rows += _guarded("cam_inference", lambda: bench_cam_inference(prepared, cfg, cam_images, device))
    rows += _guarded("training", lambda: bench_training(prepared, cfg, train_iterations, device))
    info = machine_info()
    table = pd.DataFrame([{**row, **info} for row in rows])
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    return table
