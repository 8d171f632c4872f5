"""prepare_dataset: turn VOC 2012 + SBD (real or synthetic) into the one layout every stage reads.

Output folder:
  JPEGImages/<id>.jpg             hard links to the VOC images
  SegmentationClassAug/<id>.png   VOC's own mask where it has one (255 on borders), else SBD's
  boundaries/<id>.png             class-agnostic boundary (0/1): union of SBD's per-class boundary
                                  masks; for ids SBD lacks, the same definition on the mask
  lists/{train_aug,train,val}.txt train_aug = (SBD train ∪ SBD val ∪ VOC train) − VOC val
  lists/heldout.txt               train_aug − train: where values are chosen by measurement
  labels.csv, classes.txt         image-level labels (classes present in the mask)
On real data train_aug has 10,582 ids, train 1,464, val 1,449 and heldout 9,118.
"""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path

import numpy as np
import scipy.io

from wsss.data.layout import PREPARED, SBD, VOC, inside, link_or_copy
from wsss.data.validate import Problem, check_item, raise_problems
from wsss.core.hints import rerun_hint
from wsss.core.io import BadInputError, atomic_dir, read_id_list, write_id_list, write_label_png
from wsss.core.parallel import chunks, map_chunks

log = logging.getLogger(__name__)


def read_sbd_mat(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """(segmentation, class-agnostic boundary) from an SBD `cls/<id>.mat`."""
    try:
        gt = scipy.io.loadmat(path)["GTcls"][0, 0]
        seg = np.asarray(gt["Segmentation"], dtype=np.uint8)
        boundary = np.zeros(seg.shape, bool)
        for cell in gt["Boundaries"].ravel():
            boundary |= np.asarray(cell.toarray() if hasattr(cell, "toarray") else cell, dtype=bool)
    except (OSError, KeyError, ValueError, IndexError, TypeError, scipy.io.matlab.MatReadError) as err:
        raise BadInputError(f"{path}: not a readable SBD GTcls .mat ({err}); {rerun_hint(path)}") from err
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


def _prepare_one(args) -> tuple[str, list[int], list[Problem]]:
    """Check one id's raw files (validate.check_item) and, when they are sound, write its outputs."""
    image_id, image, voc_mask, sbd_mat, out, num_classes = args
    mask, boundary, problems = check_item(image, voc_mask, sbd_mat, num_classes)
    if problems:
        return image_id, [], problems
    present = sorted(int(v) for v in np.unique(mask) if 0 < v < 255)
    if boundary is None or boundary.shape != mask.shape:
        boundary = mask_boundary(mask)
    write_label_png(Path(out) / PREPARED["masks"] / f"{image_id}.png", mask)
    write_label_png(Path(out) / PREPARED["boundaries"] / f"{image_id}.png", boundary.astype(np.uint8))
    return image_id, present, []


def _prepare_chunk(jobs: list) -> list[tuple[str, list[int], list[Problem]]]:
    return [_prepare_one(j) for j in jobs]


def _read_lists(paths: list[Path], problems: list[Problem]) -> list[list[str]]:
    """Every list, each problem (missing list, id with whitespace) collected instead of raised."""
    out = []
    for path in paths:
        try:
            out.append(read_id_list(path))
        except BadInputError as err:
            problems.append(Problem(str(path), str(err).split(": ", 1)[-1].split("; ")[0]))
            out.append([])
    return out


def prepare_dataset(voc_dir, sbd_dir, out_dir, classes: list[str], processes: int = 1) -> dict[str, int]:
    """Build the prepared layout in `out_dir` (atomically) from `voc_dir` (VOCdevkit) and `sbd_dir` (benchmark_RELEASE).

    Every raw file is checked first (wsss.data.validate), in `processes` worker processes; any
    problem stops the run with one BadInputError listing the bad files, and `out_dir` is not written.
    """
    sets = inside(voc_dir, VOC, "sets")
    problems: list[Problem] = []
    voc_train, voc_val, sbd_train, sbd_val = _read_lists(
        [sets / "train.txt", sets / "val.txt", inside(sbd_dir, SBD, "train"), inside(sbd_dir, SBD, "val")], problems)
    sbd_ids = sbd_train + sbd_val
    val_set = set(voc_val)
    train_aug = sorted((set(sbd_ids) | set(voc_train)) - val_set)
    # Where a value is chosen by measurement: labelled (SBD), and disjoint from the train split the
    # pseudo-mask tables report and from the val split DeepLab is scored on.
    heldout = sorted(set(train_aug) - set(voc_train))
    sbd_set = set(sbd_ids)
    all_ids = sorted(set(train_aug) | val_set)
    images = inside(voc_dir, VOC, "images")
    with atomic_dir(out_dir) as tmp:
        for name in ("images", "masks", "boundaries"):
            (tmp / PREPARED[name]).mkdir()
        (tmp / PREPARED["train_aug"]).parent.mkdir()
        jobs = []
        for image_id in all_ids:
            voc_mask = inside(voc_dir, VOC, "masks") / f"{image_id}.png"
            jobs.append((image_id, images / f"{image_id}.jpg", voc_mask if voc_mask.exists() else None,
                         inside(sbd_dir, SBD, "cls") / f"{image_id}.mat" if image_id in sbd_set else None, tmp,
                         len(classes)))
        done = {r[0]: r for chunk in map_chunks(_prepare_chunk, chunks(jobs, processes), processes) for r in chunk}
        results = [done[image_id] for image_id in all_ids]
        for _, _, found in results:
            problems += found
        raise_problems(problems, f"prepare_dataset ({voc_dir}, {sbd_dir})")
        for image_id in all_ids:  # hard links only once every file is known to be sound
            link_or_copy(images / f"{image_id}.jpg", tmp / PREPARED["images"] / f"{image_id}.jpg")
        with open(tmp / PREPARED["labels"], "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["id", *classes])
            for image_id, present, _ in results:
                writer.writerow([image_id, *(int(c + 1 in present) for c in range(len(classes)))])
        (tmp / PREPARED["classes"]).write_text("".join(f"{c}\n" for c in classes))
        write_id_list(tmp / PREPARED["train_aug"], train_aug)
        write_id_list(tmp / PREPARED["train"], sorted(voc_train))
        write_id_list(tmp / PREPARED["val"], sorted(voc_val))
        write_id_list(tmp / PREPARED["heldout"], heldout)
        empty = [i for i, p, _ in results if not p]
        if empty:
            log.warning("%d images have no foreground class (e.g. %s); they stay in the lists", len(empty), empty[0])
    counts = {"train_aug": len(train_aug), "train": len(voc_train), "val": len(voc_val), "heldout": len(heldout)}
    log.info("prepared %s: %s", out_dir, counts)
    return counts
