"""DeepLab inference at full image size (optional multi-scale + flip), then dense CRF.

Writes `<id>.png` (VOC palette) into `pred_dir` (argmax of the averaged softmax) and, with a
CRF, into `crf_dir` (the CRF over the softmax restricted to background + the classes the
network predicts somewhere in the image: at test time there are no image labels to use).

The CRF runs in a process pool while the network computes the next chunk of images; the pool
is forked before the first torch operation (and before CUDA is initialised) so the workers
inherit no thread pool or CUDA context.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from wsss.core.device import place_model, resolve_device
from wsss.core.io import atomic_dir, read_id_list, write_label_png
from wsss.core.model_files import load_model
from wsss.core.parallel import make_pool
from wsss.models.deeplab import DeepLab, DeepLabModelConfig
from wsss.stages.crf import crf_config, refine_probs_job

log = logging.getLogger(__name__)


def load_deeplab(path: str | os.PathLike) -> tuple[DeepLab, dict]:
    """Rebuild a trained DeepLab from `save_model`'s file (architecture from its run config)."""
    obj = load_model(path)
    cfg = obj["config"]
    model = DeepLab(cfg["num_classes"], DeepLabModelConfig(**cfg["model"]))
    model.load_state_dict(obj["model"])
    return model.eval(), cfg


def predict_probs(model: torch.nn.Module, image: torch.Tensor, scales: Sequence[float] = (1.0,),
                  flip: bool = False) -> torch.Tensor:
    """Softmax (C, H, W) at the image's size, averaged over `scales` and (optionally) a horizontal flip."""
    h, w = image.shape[-2:]
    total, n = None, 0
    # no_grad as a block, not a decorator: `make mutation` (mutmut) leaves decorated functions unmutated
    with torch.no_grad():
        for s in scales:
            x = image if s == 1.0 else F.interpolate(image, scale_factor=s, mode="bilinear", align_corners=False)
            batch = torch.cat([x, x.flip(-1)]) if flip else x
            logits = F.interpolate(model(batch).float(), size=(h, w), mode="bilinear", align_corners=False)
            probs = logits.softmax(dim=1)
            if flip:
                probs = torch.cat([probs[:1], probs[1:].flip(-1)])
            total = probs.sum(0) if total is None else total + probs.sum(0)
            n += probs.shape[0]
    return total / n


def infer_segmentation(model_path: str | os.PathLike, id_list: str | os.PathLike, images_dir: str | os.PathLike,
                       pred_dir: str | os.PathLike, crf_dir: str | os.PathLike | None = None,
                       crf: dict | None = None, scales: Sequence[float] = (1.0,), flip: bool = False,
                       device: str = "auto", processes: int = 1, threads: int | None = None) -> int:
    """Stage entry (rule infer_segmentation): predictions for every id of `id_list`; returns the count."""
    from tqdm import tqdm

    from wsss.data.datasets import WSSSDataset

    ids = read_id_list(id_list)
    crf_cfg = asdict(crf_config(crf, unary="probs")) if crf_dir is not None else None
    pool = make_pool(processes) if crf_dir is not None and processes > 1 else None  # before any torch work
    try:
        if threads:
            # The CRF workers run while the network computes the next chunk: leave them half the cores.
            torch.set_num_threads(max(1, threads // 2) if pool is not None else threads)
        dev = resolve_device(device)
        model, _ = load_deeplab(model_path)
        place_model(model, dev)
        dataset = WSSSDataset(ids, images_dir)
        chunk = max(4, 4 * processes)
        with atomic_dir(pred_dir) as pred_tmp, _maybe_dir(crf_dir) as crf_tmp:
            pending, jobs = [], []
            for k in tqdm(range(len(ids)), desc="deeplab", mininterval=5):
                item = dataset[k]
                probs = predict_probs(model, item["image"][None].to(dev), scales, flip).cpu().numpy()
                pred = probs.argmax(0).astype(np.uint8)
                write_label_png(pred_tmp / f"{item['id']}.png", pred)
                if crf_tmp is None:
                    continue
                classes = sorted({0, *np.unique(pred).tolist()})
                sub = probs[classes]
                sub = sub / np.maximum(sub.sum(0, keepdims=True), 1e-8)
                jobs.append((item["id"], Path(images_dir) / f"{item['id']}.jpg", classes, sub,
                             crf_tmp / f"{item['id']}.png", crf_cfg))
                if len(jobs) >= chunk or k == len(ids) - 1:
                    if pool is None:
                        for job in jobs:
                            refine_probs_job(job)
                    else:
                        pending.append(pool.map_async(refine_probs_job, jobs, chunksize=1))
                        if len(pending) > 1:  # at most two chunks in flight: bounded memory
                            pending.pop(0).get()
                    jobs = []
            for result in pending:
                result.get()
    except BaseException:
        if pool is not None:  # do not wait for the queued CRF work of a failed run
            pool.terminate()
        raise
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    log.info("DeepLab predictions for %d images in %s%s", len(ids), pred_dir,
             f" and CRF-refined in {crf_dir}" if crf_dir is not None else "")
    return len(ids)


class _maybe_dir:
    """`atomic_dir(path)` when a path is given, else a context yielding None."""

    def __init__(self, path):
        self.path, self.cm = path, None

    def __enter__(self):
        if self.path is None:
            return None
        self.cm = atomic_dir(self.path)
        return self.cm.__enter__()

    def __exit__(self, *exc):
        return False if self.cm is None else self.cm.__exit__(*exc)
