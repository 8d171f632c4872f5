"""Dense CRF refinement (Krähenbühl & Koltun 2011) with pydensecrf2, over a process pool.

Two unaries:
- ``labels``: a hard label map (a pseudo-mask) taken as correct with probability
  ``gt_prob`` and spread uniformly over the other labels; ignore (255) pixels are
  "unsure" (uniform). This refines pseudo-masks without the maps that made them.
- ``probs``: class probabilities (a DeepLab softmax, or localization maps turned into
  probabilities by :func:`probs_from_maps`). For a method whose pseudo-masks are gated by
  saliency (cam_sal), the gating is part of this unary: where saliency is below the threshold
  the background score is raised to 1, the score a max-normalised CAM reaches only at its peak.
  The unary's argmax is then the method's pseudo-mask, as it is for cam, and the CRF refines
  what the label says, not the bare CAM (docs/architecture.md, "CAM × saliency and the CRF").

The label set is always restricted to the image's present classes plus background:
on a VOC-size image that is ~3x faster than all 21 labels and keeps
the CRF from inventing classes the image-level label rules out.

Determinism: the CRF has no randomness and each image is processed on its own, so
the output for an image depends neither on the number of processes nor on the order
(tests/test_crf.py checks 1 vs 2 processes byte for byte).
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from wsss.core.io import (
    IGNORE_INDEX,
    BadInputError,
    atomic_dir,
    load_maps,
    read_gray_png,
    read_image,
    read_label_png,
    write_label_png,
)
from wsss.core.parallel import run_each
from wsss.core.schema import from_section, schema_defaults
from wsss.methods.cam import with_background_plane

log = logging.getLogger(__name__)

UNARIES = ("labels", "probs")


@dataclass
@schema_defaults("crf", exclude=("unary",))  # unary: resolved per method by the rule
class CRFConfig:
    """Dense-CRF parameters (the `crf` config section).

    Defaults are the schema's: DeepLab-v2's values, which the EPS authors use on VOC (iter 10,
    pos_w 3, pos_xy_std 1, bi_w 4, bi_xy_std 67, bi_rgb_std 3); config/config.yaml scales them
    to the 64-px embedded benchmark.
    """

    iterations: int
    pos_w: float  # Gaussian (smoothness) kernel weight ("compat")
    pos_xy_std: float  # Gaussian kernel spatial std in pixels
    bi_w: float  # bilateral (appearance) kernel weight
    bi_xy_std: float  # bilateral spatial std in pixels: scales with image size
    bi_rgb_std: float  # bilateral colour std in 0..255 units
    unary: str = "labels"  # how refine_crf builds the unary from a pseudo-mask: labels | probs
    gt_prob: float  # labels unary: confidence in the given label
    bg_threshold: float = 0.2  # probs unary from CAMs: background score (the rule passes pseudo_masks.threshold)
    # probs unary of a saliency-gated method (cam_sal): background score raised to 1 where saliency is
    # below this (the rule passes pseudo_masks.saliency_threshold); None: no gating
    saliency_threshold: float | None = None

    def __post_init__(self) -> None:
        if self.unary not in UNARIES:
            raise ValueError(f"crf.unary must be one of {UNARIES}, got {self.unary!r}")
        if not 0.0 < self.gt_prob < 1.0:
            raise ValueError(f"crf.gt_prob must be in (0, 1), got {self.gt_prob}")
        if self.iterations < 1:
            raise ValueError(f"crf.iterations must be >= 1, got {self.iterations}")


def crf_config(section: dict | None, **override) -> CRFConfig:
    """The `crf` settings (wsss.config.settings.crf_refinement) → CRFConfig; an unknown key is an error."""
    return from_section(CRFConfig, section, **override)


def dense_crf(image: np.ndarray, probs: np.ndarray, cfg: CRFConfig) -> np.ndarray:
    """Mean-field inference. image (H, W, 3) uint8 RGB, probs (L, H, W) → refined (L, H, W) float32."""
    import pydensecrf.densecrf as dcrf

    n_labels, h, w = probs.shape
    if image.shape[:2] != (h, w):
        raise ValueError(f"image {image.shape[:2]} and probabilities {(h, w)} differ in size")
    if n_labels == 1:  # nothing to decide
        return np.ones_like(probs, dtype=np.float32)
    crf = dcrf.DenseCRF2D(w, h, n_labels)
    # Negative log-probability unary; the clip keeps log finite for hard zeros.
    unary = -np.log(np.clip(probs.reshape(n_labels, -1), 1e-8, 1.0)).astype(np.float32)
    crf.setUnaryEnergy(np.ascontiguousarray(unary))
    crf.addPairwiseGaussian(sxy=cfg.pos_xy_std, compat=cfg.pos_w)
    # A writable C-contiguous copy: pydensecrf's memoryview rejects read-only arrays (PIL's).
    rgb = np.array(image, dtype=np.uint8, order="C", copy=True)
    crf.addPairwiseBilateral(sxy=cfg.bi_xy_std, srgb=cfg.bi_rgb_std, rgbim=rgb, compat=cfg.bi_w)
    q = crf.inference(cfg.iterations)
    return np.asarray(q, dtype=np.float32).reshape(n_labels, h, w)


def label_unary(label: np.ndarray, classes: Sequence[int], gt_prob: float) -> np.ndarray:
    """Probabilities (L, H, W) over `classes` from a hard label map.

    A pixel labelled c gets gt_prob on c and the rest spread evenly; ignore pixels and
    labels outside `classes` are unsure (uniform).
    """
    classes = list(classes)
    n = len(classes)
    probs = np.full((n,) + label.shape, 1.0 / n, dtype=np.float32)
    if n == 1:
        return probs
    other = (1.0 - gt_prob) / (n - 1)
    for k, c in enumerate(classes):
        hit = label == c
        probs[:, hit] = other
        probs[k, hit] = gt_prob
    return probs


def probs_from_maps(data: dict, bg_threshold: float, saliency: np.ndarray | None = None,
                    saliency_threshold: float | None = None) -> tuple[list[int], np.ndarray]:
    """Turn a localization-map file (wsss.stages.infer_cams via wsss.core.io.load_maps) into probabilities.

    The file holds `classes` (K,) 0-based foreground indices (label = index + 1), `maps` (K, H, W)
    and, for eps, `probs` (K+1, H, W): the softmax over the present classes plus background (last).
    EPS's softmax is used as it is. CAMs are normalised by their maximum beside a constant background
    plane `bg_threshold` (the CAM pseudo-mask rule, pseudo_masks.threshold) and scaled to sum to one,
    so their argmax is the cam pseudo-mask. With `saliency` (H, W) in [0, 1], the gating of cam_sal:
    where saliency < `saliency_threshold` the background score is raised to 1, at least every other
    score there (a max-normalised CAM, a softmax), so the argmax is the cam_sal pseudo-mask (ties go to
    the background), while the class scores keep the CAM's confidence for the CRF to weigh.
    Returns (VOC labels (L,), probabilities (L, H, W)).
    """
    labels = [int(c) + 1 for c in data["classes"]]
    if "probs" in data:
        probs = np.clip(np.asarray(data["probs"], dtype=np.float32), 0.0, None)
        labels = labels + [0]
    else:
        maps = np.clip(np.asarray(data["maps"], dtype=np.float32), 0.0, None)
        probs = with_background_plane(maps, bg_threshold)
        labels = [0] + labels
    if len(labels) != len(probs):
        raise BadInputError(f"map file has {len(probs)} maps for {len(labels)} labels; re-run infer_cams")
    if saliency is not None:
        if saliency_threshold is None:
            raise ValueError("saliency gating needs saliency_threshold (pseudo_masks.saliency_threshold)")
        if saliency.shape != probs.shape[1:]:
            raise BadInputError(f"saliency map {saliency.shape} and maps {probs.shape[1:]} differ in size; re-run "
                                "infer_saliency and infer_cams (snakemake --forcerun infer_cams)")
        background = labels.index(0)
        probs[background] = np.where(saliency < saliency_threshold, np.float32(1.0), probs[background])
    total = probs.sum(axis=0, keepdims=True)
    probs = np.where(total > 1e-8, probs / np.maximum(total, 1e-8), 1.0 / len(labels))
    return labels, probs.astype(np.float32)


def refine_label(image: np.ndarray, label: np.ndarray, present: Iterable[int], cfg: CRFConfig) -> np.ndarray:
    """CRF-refine a hard label map over background + `present` classes; returns a uint8 label map.

    Pixels ignored (255) in the input get a label from the CRF like every other pixel.
    """
    classes = sorted({0, *(int(c) for c in present)} - {IGNORE_INDEX})
    q = dense_crf(image, label_unary(label, classes, cfg.gt_prob), cfg)
    return np.asarray(classes, dtype=np.uint8)[q.argmax(axis=0)]


def refine_probs(image: np.ndarray, classes: Sequence[int], probs: np.ndarray, cfg: CRFConfig) -> np.ndarray:
    """CRF-refine probabilities over `classes` (L,) / (L, H, W); returns a uint8 label map."""
    q = dense_crf(image, probs, cfg)
    return np.asarray(classes, dtype=np.uint8)[q.argmax(axis=0)]


# --------------------------------------------------------------------------- directories

def _refine_one(job: tuple) -> str:
    """Worker: refine one image id and write its PNG. Module-level so a process pool can pickle it."""
    image_id, image_path, mask_path, maps_path, saliency_path, present, out_path, cfg_dict = job
    cfg = CRFConfig(**cfg_dict)
    image = read_image(image_path)
    if cfg.unary == "labels":
        label = read_label_png(mask_path)
        if label.shape != image.shape[:2]:
            raise BadInputError(f"{mask_path}: size {label.shape} differs from its image {image.shape[:2]} "
                                f"({image_path}); re-run make_pseudo_masks")
        if present is None:  # no image-level labels given: trust the classes the mask contains
            present = [int(c) for c in np.unique(label)]
        out = refine_label(image, label, present, cfg)
    else:
        saliency = None if saliency_path is None else read_gray_png(saliency_path)
        try:
            classes, probs = probs_from_maps(load_maps(maps_path), cfg.bg_threshold, saliency, cfg.saliency_threshold)
        except BadInputError as err:
            raise BadInputError(f"{maps_path}: {err}") from err
        if probs.shape[1:] != image.shape[:2]:
            raise BadInputError(f"{maps_path}: maps of size {probs.shape[1:]} for an image of size "
                                f"{image.shape[:2]} ({image_path}); re-run infer_cams")
        if present is not None:  # keep background + image-level classes only
            keep = [k for k, c in enumerate(classes) if c == 0 or c in set(present)]
            classes, probs = [classes[k] for k in keep], probs[keep]
            probs = probs / np.maximum(probs.sum(axis=0, keepdims=True), 1e-8)
        out = refine_probs(image, classes, probs, cfg)
    write_label_png(out_path, out)
    return image_id


def refine_probs_job(job: tuple) -> str:
    """Worker: CRF over given probabilities (e.g. a DeepLab softmax restricted to some classes).

    job = (image_id, image_path, classes (L,), probs (L, H, W), out_path, cfg dict); writes the label PNG.
    """
    image_id, image_path, classes, probs, out_path, cfg_dict = job
    image = read_image(image_path)
    probs = np.asarray(probs, dtype=np.float32)
    if probs.shape[1:] != image.shape[:2]:
        raise BadInputError(f"{image_path}: image size {image.shape[:2]} differs from its predicted "
                            f"probabilities {probs.shape[1:]}")
    write_label_png(out_path, refine_probs(image, classes, probs, CRFConfig(**cfg_dict)))
    return image_id


def refine_dir(ids: Sequence[str], images_dir: str | os.PathLike, out_dir: str | os.PathLike, cfg: CRFConfig,
               masks_dir: str | os.PathLike | None = None, maps_dir: str | os.PathLike | None = None,
               labels: dict[str, np.ndarray] | None = None, processes: int = 1,
               saliency_dir: str | os.PathLike | None = None) -> int:
    """Refine every id's pseudo-mask (`masks_dir/<id>.png`, labels unary) or maps (`maps_dir/<id>.npz`,
    probs unary) with the CRF and write `out_dir/<id>.png` (VOC palette), atomically as a directory.

    `labels` (id → (C,) 0/1 vector, from labels.csv) restricts the labels to background + present
    classes; without it, the classes of the mask (or the maps) are used. `saliency_dir/<id>.png`
    gates the probs unary (cam_sal: `cfg.saliency_threshold`).
    """
    images_dir = Path(images_dir)
    if cfg.unary == "labels" and masks_dir is None:
        raise ValueError("crf.unary 'labels' needs masks_dir (the pseudo-masks)")
    if cfg.unary == "probs" and maps_dir is None:
        raise ValueError("crf.unary 'probs' needs maps_dir (the localization maps)")
    if saliency_dir is not None and (cfg.unary != "probs" or cfg.saliency_threshold is None):
        raise ValueError("saliency_dir gates the probs unary only, and needs crf saliency_threshold")
    cfg_dict = asdict(cfg)
    with atomic_dir(out_dir) as tmp:
        jobs = []
        for image_id in ids:
            present = None
            if labels is not None:
                if image_id not in labels:
                    raise BadInputError(f"image id {image_id} has no row in the labels table; re-run prepare_dataset")
                present = [int(c) + 1 for c in np.flatnonzero(labels[image_id])]
            jobs.append((image_id, images_dir / f"{image_id}.jpg",
                         None if masks_dir is None else Path(masks_dir) / f"{image_id}.png",
                         None if maps_dir is None else Path(maps_dir) / f"{image_id}.npz",
                         None if saliency_dir is None else Path(saliency_dir) / f"{image_id}.png",
                         present, tmp / f"{image_id}.png", cfg_dict))
        run_each(_refine_one, jobs, processes, desc="crf")
    log.info("CRF refined %d images with %d process(es) into %s", len(ids), processes, out_dir)
    return len(ids)


def refine_crf(id_list: str | os.PathLike, images_dir: str | os.PathLike, out_dir: str | os.PathLike,
               crf: dict, masks_dir: str | os.PathLike | None = None, maps_dir: str | os.PathLike | None = None,
               labels_csv: str | os.PathLike | None = None, shard: int = 0, num_shards: int = 1,
               processes: int = 1, saliency_dir: str | os.PathLike | None = None,
               sharded_by: str | os.PathLike | None = None) -> int:
    """Stage entry (rule refine_crf): one shard of the ids in `id_list`, config section `crf` as a dict
    (plus the rule's bg_threshold and, for a saliency-gated method, saliency_threshold and saliency_dir).
    With `sharded_by` (an id list holding them all: train_aug) the shard is the ids of its shard, so
    `masks_dir` and `maps_dir` need hold only that shard's files."""
    from wsss.core.io import read_id_list
    from wsss.core.sharding import shard_ids, shard_ids_within

    ids = read_id_list(id_list)
    if sharded_by is None:
        ids = shard_ids(ids, shard, num_shards)
    else:
        ids = shard_ids_within(ids, read_id_list(sharded_by), shard, num_shards)
    labels = None
    if labels_csv is not None:
        from wsss.data.datasets import read_labels_csv

        _, labels = read_labels_csv(labels_csv)
    return refine_dir(ids, images_dir, out_dir, crf_config(crf), masks_dir=masks_dir, maps_dir=maps_dir,
                      labels=labels, processes=processes, saliency_dir=saliency_dir)
