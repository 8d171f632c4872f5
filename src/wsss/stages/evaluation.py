"""Evaluation stage entry points: one (method, stage) prediction folder → one small result file.

Each function is what one Snakemake job runs (`workflow/scripts/evaluate_*.py`); the table
rules then gather the JSON files (`wsss.stages.tables`). Every result JSON carries its `method`,
`stage` and the number of images, so a table never has to guess where a number came from.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wsss.core.io import BadInputError, atomic_path, read_id_list, write_json
from wsss.metrics import evaluate_confusion_ratio_dirs, evaluate_dirs, read_scene_classes, resolve_pairs
from wsss.metrics.boundary import BoundaryCounts, boundary_counts_per_image
from wsss.metrics.per_image import evaluate_dirs_per_image

log = logging.getLogger("wsss.stages.evaluation")


@dataclass
class EvalLabel:
    """Which row of a table the result belongs to (from the rule's wildcards)."""
    method: str
    stage: str


def read_class_names(path: str | os.PathLike) -> list[str]:
    """prepared/classes.txt: foreground class names; index 0 (background) is implicit."""
    try:
        return [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        raise BadInputError(f"{path}: class list is missing; re-run prepare_dataset") from None


def _check_dir(pred_dir: str | os.PathLike, ids: list[str]) -> None:
    missing = [i for i in ids if not (Path(pred_dir) / f"{i}.png").exists()]
    if missing:
        raise BadInputError(f"{pred_dir}: {len(missing)} of {len(ids)} predictions missing (first: {missing[0]}.png); "
                            "the producing rule wrote a different id list — re-run it")


def evaluate_miou(pred_dir: str, gt_dir: str, ids_file: str, classes_file: str, out_matrix: str,
                  out_json: str, label: EvalLabel, processes: int = 1, out_per_image: str | None = None) -> dict:
    """mIoU & co. of one prediction folder; writes the confusion matrix (.npz) and a summary JSON,
    and with `out_per_image` each image's matrix (wsss.metrics.per_image, sparse .npz: what a paired
    bootstrap resamples), the summed matrix then being their sum."""
    ids = read_id_list(ids_file)
    _check_dir(pred_dir, ids)
    names = ["background"] + read_class_names(classes_file)
    start = time.perf_counter()
    if out_per_image is None:
        cm = evaluate_dirs(pred_dir, gt_dir, ids, len(names), processes)
    else:
        per_image = evaluate_dirs_per_image(pred_dir, gt_dir, ids, len(names), processes)
        per_image.save(out_per_image)
        cm = per_image.total()
    log.info("%s/%s: %d images in %.2f s with %d processes: mIoU %.4f", label.stage, label.method, len(ids),
             time.perf_counter() - start, processes, cm.miou())
    cm.save(out_matrix)
    summary = {"method": label.method, "stage": label.stage, "images": len(ids), **cm.summary(names)}
    write_json(out_json, summary)
    return summary


def save_counts(path: str | os.PathLike, ids: list[str], counts: np.ndarray) -> None:
    """Per-image counts (N, ...) with their ids, for a paired bootstrap (wsss.stages.intervals)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, ids=np.array(ids), counts=counts)


def load_counts(path: str | os.PathLike) -> tuple[list[str], np.ndarray]:
    try:
        with np.load(path) as data:
            return [str(i) for i in data["ids"]], data["counts"]
    except (OSError, KeyError, ValueError) as err:
        raise BadInputError(f"{path}: not a per-image counts file ({err}); rerun its evaluation rule") from err


def evaluate_boundary(pred_dir: str, boundary_dir: str, ids_file: str, out_json: str, label: EvalLabel,
                      tolerance: float, processes: int = 1, out_per_image: str | None = None) -> dict:
    """Boundary P/R/F1 of one prediction folder against the prepared SBD boundary maps.

    Ids without a boundary map are skipped and counted (`skipped`): SBD does not annotate every
    VOC image. None at all is an error (wrong folder).
    """
    all_ids = read_id_list(ids_file)
    _check_dir(pred_dir, all_ids)
    ids = [i for i in all_ids if (Path(boundary_dir) / f"{i}.png").exists()]
    if not ids:
        raise BadInputError(f"{boundary_dir}: no boundary map for any id of {ids_file}; re-run prepare_dataset")
    if len(ids) < len(all_ids):
        log.warning("%d of %d ids have no boundary map in %s; skipped", len(all_ids) - len(ids), len(all_ids),
                    boundary_dir)
    per_image = boundary_counts_per_image(pred_dir, boundary_dir, ids, tolerance, processes)
    counts = BoundaryCounts(*(int(v) for v in per_image.sum(0)), len(ids))
    if out_per_image is not None:
        save_counts(out_per_image, ids, per_image)
    log.info("%s/%s: boundary P %.4f R %.4f F1 %.4f (tolerance %s px)", label.stage, label.method,
             counts.precision, counts.recall, counts.f1, tolerance)
    summary = {"method": label.method, "stage": label.stage, "tolerance": tolerance,
               "skipped": len(all_ids) - len(ids), **counts.summary()}
    write_json(out_json, summary)
    return summary


def evaluate_confusion_ratio(pred_dir: str, gt_dir: str, context_dir: str, ids_file: str, classes_file: str,
                             pairs: list[dict], out_json: str, label: EvalLabel, processes: int = 1,
                             out_per_image: str | None = None) -> dict:
    """Confusion ratio m_{k,c} and target-class IoU for each configured (target, coincident) pair.

    Only ids with a scene-label map count (PASCAL-Context covers VOC 2010 images, not all of
    VOC 2012); FP and TP both come from that same subset.
    """
    all_ids = read_id_list(ids_file)
    _check_dir(pred_dir, all_ids)
    class_names = read_class_names(classes_file)
    scene_names = read_scene_classes(Path(context_dir) / "classes.txt")
    resolved = resolve_pairs(pairs, class_names, scene_names)
    ids = [i for i in all_ids if (Path(context_dir) / f"{i}.png").exists()]
    if len(ids) < len(all_ids):
        log.warning("%d of %d ids have no scene-label map in %s; skipped", len(all_ids) - len(ids), len(all_ids),
                    context_dir)
    counts, cm, per_image = evaluate_confusion_ratio_dirs(pred_dir, gt_dir, context_dir, ids, resolved,
                                                          len(class_names) + 1, processes)
    if out_per_image is not None:
        save_counts(out_per_image, ids, per_image)
    iou, ratios = cm.iou(), counts.ratios()
    rows = []
    for j, (p, r) in enumerate(zip(pairs, resolved)):
        rows.append({"target": p["target"], "coincident": p["coincident"], "target_iou": _num(iou[r.target]),
                     "confusion_ratio": _num(ratios[j]), "fp": int(counts.fp[j]), "tp": int(counts.tp[j])})
        log.info("%s/%s: %s-%s ratio %s, %s IoU %s", label.stage, label.method, p["target"], p["coincident"],
                 rows[-1]["confusion_ratio"], p["target"], rows[-1]["target_iou"])
    summary = {"method": label.method, "stage": label.stage, "images": len(ids),
               "skipped": len(all_ids) - len(ids), "pairs": rows}
    write_json(out_json, summary)
    return summary


def _num(x: float) -> float | None:
    return None if x != x else float(x)
