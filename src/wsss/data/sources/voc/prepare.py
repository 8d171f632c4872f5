"""Data source `voc`: PASCAL VOC 2012 + SBD (real, or the synthetic benchmark in the same layout)
merged into the prepared layout (wsss.data.prepared).

  SegmentationClassAug/<id>.png   VOC's own mask where it has one (255 on borders), else SBD's
  boundaries/<id>.png             class-agnostic boundary (0/1): union of SBD's per-class boundary
                                  masks; for ids SBD lacks, the same definition on the mask
  lists/{train_aug,train,val}.txt train_aug = (SBD train ∪ SBD val ∪ VOC train) − VOC val
  lists/heldout.txt               train_aug − train: where values are chosen by measurement
On real data train_aug has 10,582 ids, train 1,464, val 1,449 and heldout 9,118.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import scipy.io

from wsss.core.hints import rerun_hint
from wsss.core.io import BadInputError, read_id_list
from wsss.core.parallel import chunks, map_chunks
from wsss.data.layout import inside
from wsss.data.prepared import finish, mask_boundary, prepared_dir, write_item
from wsss.data.sources.voc import SBD, VOC
from wsss.data.validate import Problem, check_image, check_labels, raise_problems, read_label_mask

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


def read_sbd(path: Path, num_classes: int, shape) -> tuple[tuple | None, list[Problem]]:
    """((segmentation, boundary), problems) of an SBD cls .mat."""
    if not path.exists():
        return None, [Problem(str(path), "listed in the SBD train/val lists but missing")]
    try:
        seg, boundary = read_sbd_mat(path)
    except BadInputError as err:
        return None, [Problem(str(path), str(err).split(": ", 1)[-1].split("; ")[0])]
    return (seg, boundary), check_labels(str(path), seg, num_classes, shape)


def check_item(image: Path, voc_mask: Path | None, sbd_mat: Path | None, num_classes: int):
    """All checks of one id: (mask or None, boundary or None, problems); the mask is VOC's, else SBD's."""
    shape, problems = check_image(image)
    mask = boundary = None
    if sbd_mat is not None:
        sbd, found = read_sbd(sbd_mat, num_classes, shape)
        problems += found
        if sbd is not None:
            mask, boundary = sbd
    if voc_mask is not None:
        voc, found = read_label_mask(voc_mask, num_classes, shape)
        problems += found
        mask = voc
    if voc_mask is None and sbd_mat is None:
        problems.append(Problem(str(image.parent.parent / "SegmentationClass" / f"{image.stem}.png"),
                                "listed id has no mask: neither VOC SegmentationClass/<id>.png nor SBD "
                                "cls/<id>.mat exists"))
    return mask, boundary, problems



def _prepare_one(args) -> tuple[str, list[int] | None, list[Problem]]:
    """Check one id's raw files and, when they are sound, write its mask and boundary."""
    image_id, image, voc_mask, sbd_mat, out, num_classes = args
    mask, boundary, problems = check_item(image, voc_mask, sbd_mat, num_classes)
    if problems:
        return image_id, None, problems
    if boundary is None or boundary.shape != mask.shape:
        boundary = mask_boundary(mask)
    return image_id, write_item(out, image_id, mask, boundary), []


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

    Every raw file is checked first, in `processes` worker processes; any problem stops the run
    with one BadInputError listing the bad files, and `out_dir` is not written.
    """
    sets = inside(voc_dir, VOC, "sets")
    problems: list[Problem] = []
    voc_train, voc_val, sbd_train, sbd_val = _read_lists(
        [sets / "train.txt", sets / "val.txt", inside(sbd_dir, SBD, "train"), inside(sbd_dir, SBD, "val")], problems)
    sbd_ids = set(sbd_train + sbd_val)
    train_aug = sorted((sbd_ids | set(voc_train)) - set(voc_val))
    # Where a value is chosen by measurement: labelled (SBD), and disjoint from the train split the
    # pseudo-mask tables report and from the val split DeepLab is scored on.
    heldout = sorted(set(train_aug) - set(voc_train))
    all_ids = sorted(set(train_aug) | set(voc_val))
    images = inside(voc_dir, VOC, "images")
    with prepared_dir(out_dir, boundaries=True) as tmp:
        jobs = []
        for image_id in all_ids:
            voc_mask = inside(voc_dir, VOC, "masks") / f"{image_id}.png"
            jobs.append((image_id, images / f"{image_id}.jpg", voc_mask if voc_mask.exists() else None,
                         inside(sbd_dir, SBD, "cls") / f"{image_id}.mat" if image_id in sbd_ids else None, tmp,
                         len(classes)))
        results = [r for chunk in map_chunks(_prepare_chunk, chunks(jobs, processes), processes) for r in chunk]
        for _, _, found in results:
            problems += found
        raise_problems(problems, f"prepare_dataset ({voc_dir}, {sbd_dir})")
        present = {image_id: found for image_id, found, _ in results}
        counts = finish(tmp, classes, {i: images / f"{i}.jpg" for i in all_ids}, present,
                        {"train_aug": train_aug, "train": voc_train, "val": voc_val, "heldout": heldout})
        empty = [i for i, p in present.items() if not p]
        if empty:
            log.warning("%d images have no foreground class (e.g. %s); they stay in the lists", len(empty), empty[0])
    log.info("prepared %s: %s", out_dir, counts)
    return counts
