"""Saliency maps for the WSSS images: PFAN inference, precomputed maps, and held-out evaluation.

Every map is an 8-bit grey PNG `<id>.png` at its image's size (the contract of
`results/saliency/maps`), whichever way it was made.
"""

from __future__ import annotations

import csv
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from wsss.data.datasets import normalize
from wsss.data.duts import IMAGE_DIR, MASK_DIR, list_duts, resize_image, split_duts
from wsss.data.layout import link_or_copy
from wsss.device import resolve_device
from wsss.io import BadInputError, atomic_dir, atomic_path, read_gray_png, read_id_list, read_image, write_gray_png
from wsss.metrics.saliency import SaliencyScores, centre_prior
from wsss.models.pfan import PFAN, build_pfan
from wsss.sharding import shard_ids
from wsss.train.model_files import load_model

log = logging.getLogger("wsss.saliency")


def load_pfan(path: str | os.PathLike, device: torch.device) -> tuple[PFAN, int]:
    """(model in eval mode on `device`, input size) from a file written by `train_saliency`."""
    obj = load_model(path)
    cfg = dict(obj.get("config", {}).get("model", {}))
    if "input_size" not in cfg:
        raise BadInputError(f"{path}: model file has no config.model.input_size; it was not written by "
                            "train_saliency — re-train it, or re-save it with its PFAN config")
    size = int(cfg.pop("input_size"))
    cfg["backbone_weights"] = None  # the trained weights below replace any initialisation
    model = build_pfan(cfg)
    try:
        model.load_state_dict(obj["model"])
    except RuntimeError as err:
        raise BadInputError(f"{path}: weights do not match the PFAN config stored with them "
                            f"({str(err).splitlines()[0]}); re-run train_saliency") from err
    return model.to(device).eval(), size


@torch.inference_mode()
def predict(model: PFAN, images: list[np.ndarray], size: int, device: torch.device) -> list[np.ndarray]:
    """Saliency in [0, 1] for each (H, W, 3) uint8 image, at that image's own size."""
    batch = torch.stack([normalize(resize_image(im, size)) for im in images]).to(device)
    prob = torch.sigmoid(model(batch).float())
    out = []
    for p, im in zip(prob, images):
        p = F.interpolate(p[None], size=im.shape[:2], mode="bilinear", align_corners=False)[0, 0]
        out.append(p.clamp_(0, 1).cpu().numpy())
    return out


def _union_ids(id_lists: list[str | os.PathLike]) -> list[str]:
    return sorted({i for path in id_lists for i in read_id_list(path)})


def _batches(items: list, n: int):
    for k in range(0, len(items), n):
        yield items[k:k + n]


def infer_saliency(model_path: str | os.PathLike, images_dir: str | os.PathLike, id_lists: list,
                   out_dir: str | os.PathLike, *, shard: int = 0, num_shards: int = 1, device: str = "auto",
                   batch_size: int = 32) -> int:
    """Write `<out_dir>/<id>.png` for this shard of the ids in `id_lists`; returns the count."""
    from tqdm import tqdm

    dev = resolve_device(device)
    model, size = load_pfan(model_path, dev)
    ids = shard_ids(_union_ids(id_lists), shard, num_shards)
    log.info("PFAN inference: %d images (shard %d/%d) at %d px on %s", len(ids), shard, num_shards, size, dev)
    with atomic_dir(out_dir) as tmp:
        for chunk in tqdm(list(_batches(ids, batch_size)), desc="saliency", mininterval=2.0):
            images = [read_image(Path(images_dir) / f"{i}.jpg") for i in chunk]
            for i, sal in zip(chunk, predict(model, images, size, dev)):
                write_gray_png(tmp / f"{i}.png", sal)
    return len(ids)


def check_precomputed(src_dir: str | os.PathLike, images_dir: str | os.PathLike, id_lists: list,
                      out_dir: str | os.PathLike) -> int:
    """Bring user-supplied maps `<src_dir>/<id>.png` into `out_dir` (8-bit grey, image size).

    Every id must have a map; a map of another size is resized (bilinear) with a logged warning;
    maps that already fit are hard-linked. Returns the number of resized maps.
    """
    src_dir, images_dir = Path(src_dir), Path(images_dir)
    ids = _union_ids(id_lists)
    if not src_dir.is_dir():
        raise BadInputError(f"{src_dir}: saliency.precomputed_dir does not exist; point it at a folder of "
                            "<id>.png saliency maps, or set saliency.source: pfan")
    missing = [i for i in ids if not (src_dir / f"{i}.png").is_file()]
    if missing:
        raise BadInputError(f"{src_dir / (missing[0] + '.png')}: no saliency map for image id {missing[0]} "
                            f"({len(missing)} of {len(ids)} ids missing); add the maps, or set "
                            "saliency.source: pfan to compute them")
    resized = 0
    with atomic_dir(out_dir) as tmp:
        for i in ids:
            src = src_dir / f"{i}.png"
            try:
                with Image.open(images_dir / f"{i}.jpg") as im:
                    size = im.size
            except OSError as err:
                raise BadInputError(f"{images_dir / (i + '.jpg')}: cannot read the image ({err}); "
                                    "re-run prepare_dataset") from err
            try:
                with Image.open(src) as m:
                    mode, msize = m.mode, m.size
            except OSError as err:
                raise BadInputError(f"{src}: cannot decode saliency map ({err}); replace the file") from err
            if mode == "L" and msize == size:
                link_or_copy(src, tmp / src.name)
                continue
            sal = read_gray_png(src)
            if msize != size:
                resized += 1
                if resized <= 5:
                    log.warning("%s: map is %dx%d, image is %dx%d: resized (bilinear)", src, *msize, *size)
                sal = np.asarray(Image.fromarray(sal, mode="F").resize(size, Image.BILINEAR))
            write_gray_png(tmp / src.name, sal)
    if resized:
        log.warning("%d of %d precomputed maps did not match their image size and were resized", resized, len(ids))
    log.info("precomputed saliency: %d maps from %s", len(ids), src_dir)
    return resized


def evaluate_saliency(model_path: str | os.PathLike, duts_dir: str | os.PathLike, out_csv: str | os.PathLike,
                      *, holdout: float, seed: int, centre_sigma: float = 0.25, device: str = "auto",
                      batch_size: int = 32) -> list[dict]:
    """MAE and max F of PFAN and of a centre prior on the held-out split; written to `out_csv`."""
    dev = resolve_device(device)
    model, size = load_pfan(model_path, dev)
    _, held = split_duts(list_duts(duts_dir), holdout, seed)
    scores = {"pfan": SaliencyScores(), "centre_prior": SaliencyScores()}
    for chunk in _batches(held, batch_size):
        images = [read_image(Path(duts_dir) / IMAGE_DIR / f"{i}.jpg") for i in chunk]
        for i, im, sal in zip(chunk, images, predict(model, images, size, dev)):
            gt = read_gray_png(Path(duts_dir) / MASK_DIR / f"{i}.png")
            scores["pfan"].add(sal, gt)
            scores["centre_prior"].add(centre_prior(*gt.shape, sigma=centre_sigma), gt)
    rows = [{"model": name, **s.result()} for name, s in scores.items()]
    with atomic_path(out_csv) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["model", "mae", "max_f", "best_threshold", "n_images"])
        writer.writeheader()
        for r in rows:
            writer.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.items()})
    for r in rows:
        log.info("%s: MAE %.4f, max F %.4f (threshold %.2f) on %d held-out images", r["model"], r["mae"],
                 r["max_f"], r["best_threshold"], r["n_images"])
    return rows
