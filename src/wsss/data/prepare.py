"""prepare_dataset: turn VOC 2012 + SBD (real or synthetic) into the one layout every stage reads.

Output folder:
  JPEGImages/<id>.jpg             hard links to the VOC images
  SegmentationClassAug/<id>.png   VOC's own mask where it has one (255 on borders), else SBD's
  boundaries/<id>.png             class-agnostic boundary (0/1): union of SBD's per-class boundary
                                  masks; for ids SBD lacks, the same definition on the mask
  lists/{train_aug,train,val}.txt train_aug = (SBD train ∪ SBD val ∪ VOC train) − VOC val
  labels.csv, classes.txt         image-level labels (classes present in the mask)
On real data train_aug has 10,582 ids, train 1,464 and val 1,449.
"""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path

import numpy as np
import scipy.io

from wsss.data.layout import PREPARED, SBD, VOC, inside, link_or_copy
from wsss.io import BadInputError, atomic_dir, read_id_list, read_label_png, write_id_list, write_label_png
from wsss.parallel import chunks, map_chunks

log = logging.getLogger(__name__)


def read_sbd_mat(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """(segmentation, class-agnostic boundary) from an SBD `cls/<id>.mat`."""
    try:
        gt = scipy.io.loadmat(path)["GTcls"][0, 0]
        seg = np.asarray(gt["Segmentation"], dtype=np.uint8)
        boundary = np.zeros(seg.shape, bool)
        for cell in gt["Boundaries"].ravel():
            boundary |= np.asarray(cell.toarray() if hasattr(cell, "toarray") else cell, dtype=bool)
    except (OSError, KeyError, ValueError, IndexError) as err:
        raise BadInputError(f"{path}: not a readable SBD GTcls .mat ({err}); re-extract benchmark.tgz") from err
    return seg, boundary


def mask_boundary(label: np.ndarray) -> np.ndarray:
    """SBD's definition on a mask: pixels of a class region with a 4-neighbour of another label (255 ignored)."""
    lab = label.copy()
    lab[lab == 255] = 0
    pad = np.pad(lab, 1, mode="edge")
    diff = np.zeros(lab.shape, bool)
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        diff |= pad[dy:dy + lab.shape[0], dx:dx + lab.shape[1]] != lab
    return diff & (lab > 0)


def _prepare_one(args) -> tuple[str, list[int]]:
    image_id, voc_mask, sbd_mat, out, num_classes = args
    sbd_seg = boundary = None
    if sbd_mat is not None:
        sbd_seg, boundary = read_sbd_mat(sbd_mat)
    if voc_mask is not None:
        mask, source = read_label_png(voc_mask), voc_mask
    elif sbd_seg is not None:
        mask, source = sbd_seg, sbd_mat
    else:
        raise BadInputError(f"no mask for id '{image_id}' in VOC SegmentationClass or SBD cls; "
                            "the VOC/SBD folders are incomplete — re-extract the archives")
    present = sorted(int(v) for v in np.unique(mask) if 0 < v < 255)
    if present and present[-1] > num_classes:
        raise BadInputError(f"{source}: label {present[-1]} but dataset.classes lists only {num_classes} "
                            "classes; fix dataset.classes in the config")
    if boundary is None or boundary.shape != mask.shape:
        boundary = mask_boundary(mask)
    write_label_png(Path(out) / PREPARED["masks"] / f"{image_id}.png", mask)
    write_label_png(Path(out) / PREPARED["boundaries"] / f"{image_id}.png", boundary.astype(np.uint8))
    return image_id, present


def _prepare_chunk(jobs: list) -> list[tuple[str, list[int]]]:
    return [_prepare_one(j) for j in jobs]


def prepare_dataset(voc_dir, sbd_dir, out_dir, classes: list[str], processes: int = 1) -> dict[str, int]:
    """Build the prepared layout in `out_dir` (atomically) from `voc_dir` (VOCdevkit) and `sbd_dir` (benchmark_RELEASE)."""
    sets = inside(voc_dir, VOC, "sets")
    voc_train, voc_val = read_id_list(sets / "train.txt"), read_id_list(sets / "val.txt")
    sbd_ids = read_id_list(inside(sbd_dir, SBD, "train")) + read_id_list(inside(sbd_dir, SBD, "val"))
    val_set = set(voc_val)
    train_aug = sorted((set(sbd_ids) | set(voc_train)) - val_set)
    sbd_set = set(sbd_ids)
    all_ids = sorted(set(train_aug) | val_set)
    with atomic_dir(out_dir) as tmp:
        for name in ("images", "masks", "boundaries"):
            (tmp / PREPARED[name]).mkdir()
        (tmp / PREPARED["train_aug"]).parent.mkdir()
        jobs = []
        for image_id in all_ids:
            src = inside(voc_dir, VOC, "images") / f"{image_id}.jpg"
            if not src.exists():
                raise BadInputError(f"{src}: image listed in the VOC/SBD split files is missing; re-extract the archives")
            link_or_copy(src, tmp / PREPARED["images"] / src.name)
            voc_mask = inside(voc_dir, VOC, "masks") / f"{image_id}.png"
            jobs.append((image_id, voc_mask if voc_mask.exists() else None,
                         inside(sbd_dir, SBD, "cls") / f"{image_id}.mat" if image_id in sbd_set else None, tmp,
                         len(classes)))
        done = dict(r for chunk in map_chunks(_prepare_chunk, chunks(jobs, processes), processes) for r in chunk)
        results = [(image_id, done[image_id]) for image_id in all_ids]
        with open(tmp / PREPARED["labels"], "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["id", *classes])
            for image_id, present in results:
                writer.writerow([image_id, *(int(c + 1 in present) for c in range(len(classes)))])
        (tmp / PREPARED["classes"]).write_text("".join(f"{c}\n" for c in classes))
        write_id_list(tmp / PREPARED["train_aug"], train_aug)
        write_id_list(tmp / PREPARED["train"], sorted(voc_train))
        write_id_list(tmp / PREPARED["val"], sorted(voc_val))
        empty = [i for i, p in results if not p]
        if empty:
            log.warning("%d images have no foreground class (e.g. %s); they stay in the lists", len(empty), empty[0])
    counts = {"train_aug": len(train_aug), "train": len(voc_train), "val": len(voc_val)}
    log.info("prepared %s: %s", out_dir, counts)
    return counts
