"""Evaluation stage entry points: one (method, stage) prediction folder → one small result file.

Each function is what one Snakemake job runs (`workflow/scripts/evaluate_*.py`); the table
rules then gather the JSON files (`wsss.stages.tables`). Every result JSON carries its `method`,
`stage` and the number of images, so a table never has to guess where a number came from.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wsss.core.io import BadInputError, atomic_path, read_id_list, write_json
from wsss.core.sharding import shard_ids
from wsss.metrics import evaluate_confusion_ratio_dirs, read_scene_classes, resolve_pairs
from wsss.metrics.boundary import BoundaryCounts, boundary_counts_per_image
from wsss.metrics.confusion_matrix import ConfusionMatrix
from wsss.metrics.per_image import PerImageConfusion, evaluate_dirs_per_image

log = logging.getLogger(__name__)


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


def miou_shard(pred_dir: str, ids: list[str], out: str, *, gt_dir: str, classes_file: str,
               processes: int = 1) -> int:
    """Every image's confusion matrix against the ground truth."""
    names = ["background"] + read_class_names(classes_file)
    # a shard may hold no id (more shards than images): it adds nothing to the sum
    per_image = (evaluate_dirs_per_image(pred_dir, gt_dir, ids, len(names), processes) if ids else
                 PerImageConfusion.from_matrices([], np.zeros((0, len(names), len(names)), np.int64)))
    per_image.save(out)
    return len(ids)


def boundary_shard(pred_dir: str, ids: list[str], out: str, *, boundary_dir: str, tolerance: float,
                   processes: int = 1) -> int:
    """Every image's boundary counts (matched and total pixels) at `tolerance`; images without a
    boundary annotation are left out and counted as listed."""
    kept = [i for i in ids if (Path(boundary_dir) / f"{i}.png").exists()]
    counts = (boundary_counts_per_image(pred_dir, boundary_dir, kept, tolerance, processes) if kept
              else np.zeros((0, 4), np.int64))
    with atomic_path(out) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, ids=np.array(kept), counts=counts, listed=len(ids))
    return len(kept)


def confusion_ratio_shard(pred_dir: str, ids: list[str], out: str, *, gt_dir: str, classes_file: str,
                          context_dir: str, pairs: list[dict], processes: int = 1) -> int:
    """Every image's (target, context) pixel counts of each confusion pair, and the shard's confusion
    matrix; images without scene labels are left out and counted as listed."""
    class_names = read_class_names(classes_file)
    resolved = resolve_pairs(pairs, class_names, read_scene_classes(Path(context_dir) / "classes.txt"))
    kept = [i for i in ids if (Path(context_dir) / f"{i}.png").exists()]
    cm, counts = ConfusionMatrix(len(class_names) + 1), np.zeros((0, len(resolved), 2), np.int64)
    if kept:
        _, cm, counts = evaluate_confusion_ratio_dirs(pred_dir, gt_dir, context_dir, kept, resolved,
                                                      len(class_names) + 1, processes)
    with atomic_path(out) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, ids=np.array(kept), counts=counts, listed=len(ids), matrix=cm.matrix,
                            pred_ignored=cm.pred_ignored)
    return len(kept)


# One function per kind, each taking exactly the settings it reads (wsss.config.settings.evaluation_shard).
SHARD_KINDS = {"miou": miou_shard, "boundary": boundary_shard, "confusion_ratio": confusion_ratio_shard}


def evaluate_shard(kind: str, pred_dir: str, ids_file: str, out: str, *, shard: int = 0, num_shards: int = 1,
                   processes: int = 1, **reads) -> int:
    """One shard of a (stage, method)'s evaluation of `kind`: the per-image counts of its ids, which
    the merging job (evaluate_miou, ...) sums. `reads` are the kind's own folders and settings. An
    image's counts never depend on the shards. Returns the images scored."""
    ids = shard_ids(read_id_list(ids_file), shard, num_shards)
    _check_dir(pred_dir, ids)
    return SHARD_KINDS[kind](pred_dir, ids, out, processes=processes, **reads)


def _load_shards(paths: list[str]) -> tuple[list[str], np.ndarray, int, list[ConfusionMatrix]]:
    """(ids, per-image counts, ids listed, confusion matrices) of the boundary / confusion shards."""
    ids, counts, listed, matrices = [], [], 0, []
    for path in paths:
        try:
            with np.load(path) as data:
                ids += [str(i) for i in data["ids"]]
                counts.append(data["counts"])
                listed += int(data["listed"])
                if "matrix" in data:
                    matrices.append(ConfusionMatrix(data["matrix"].shape[0], data["matrix"], data["pred_ignored"]))
        except (OSError, KeyError, ValueError) as err:
            raise BadInputError(f"{path}: not an evaluation shard ({err}); rerun evaluate_shard") from err
    return ids, np.concatenate(counts), listed, matrices


def _scored_shards(shards: list[str], out_per_image: str, needs: str, folder: str, fix: str):
    """The boundary / confusion shards summed: their ids that had the map they need (the others are
    counted as skipped), saved per image for the bootstrap."""
    ids, per_image, listed, matrices = _load_shards(shards)
    if not ids:
        raise BadInputError(f"{folder}: no {needs} for any id scored; {fix}")
    if len(ids) < listed:
        log.warning("%d of %d ids have no %s in %s; skipped", listed - len(ids), listed, needs, folder)
    save_counts(out_per_image, ids, per_image)
    return ids, per_image, listed, matrices


def evaluate_miou(shards: list[str], classes_file: str, out_matrix: str, out_json: str, label: EvalLabel,
                  out_per_image: str) -> dict:
    """mIoU & co. of one prediction folder from its shards' per-image matrices: writes the summed
    confusion matrix (.npz), a summary JSON and every image's matrix (wsss.metrics.per_image, what
    the paired bootstrap resamples)."""
    names = ["background"] + read_class_names(classes_file)
    per_image = PerImageConfusion.concat([PerImageConfusion.load(s) for s in shards])
    if not per_image.ids:
        raise BadInputError(f"{shards[0]}: its shards scored no image; check the split's id list")
    per_image.save(out_per_image)
    cm = per_image.total()
    log.info("%s/%s: %d images from %d shard(s): mIoU %.4f", label.stage, label.method, len(per_image.ids),
             len(shards), cm.miou())
    cm.save(out_matrix)
    summary = {"method": label.method, "stage": label.stage, "images": len(per_image.ids), **cm.summary(names)}
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


def evaluate_boundary(shards: list[str], boundary_dir: str, out_json: str, label: EvalLabel, tolerance: float,
                      out_per_image: str) -> dict:
    """Boundary P/R/F1 of one prediction folder against the prepared SBD boundary maps, from its shards.

    Ids without a boundary map are skipped and counted (`skipped`): SBD does not annotate every
    VOC image. None at all is an error (wrong folder).
    """
    ids, per_image, listed, _ = _scored_shards(shards, out_per_image, "boundary map", boundary_dir,
                                               "re-run prepare_dataset")
    counts = BoundaryCounts(*(int(v) for v in per_image.sum(0)), len(ids))
    log.info("%s/%s: boundary P %.4f R %.4f F1 %.4f (tolerance %s px)", label.stage, label.method,
             counts.precision, counts.recall, counts.f1, tolerance)
    summary = {"method": label.method, "stage": label.stage, "tolerance": tolerance,
               "skipped": listed - len(ids), **counts.summary()}
    write_json(out_json, summary)
    return summary


def evaluate_confusion_ratio(shards: list[str], classes_file: str, context_dir: str, pairs: list[dict],
                             out_json: str, label: EvalLabel, out_per_image: str) -> dict:
    """Confusion ratio m_{k,c} and target-class IoU for each configured (target, coincident) pair,
    from the shards' counts.

    Only ids with a scene-label map count (PASCAL-Context covers VOC 2010 images, not all of
    VOC 2012); FP and TP both come from that same subset.
    """
    class_names = read_class_names(classes_file)
    resolved = resolve_pairs(pairs, class_names, read_scene_classes(Path(context_dir) / "classes.txt"))
    ids, per_image, listed, matrices = _scored_shards(shards, out_per_image, "scene-label map", context_dir,
                                                      "check dataset.root's scene labels")
    cm = matrices[0]
    for other in matrices[1:]:
        cm.merge(other)
    fp, tp = per_image.sum(0).T
    iou = cm.iou()
    rows = []
    for j, (p, r) in enumerate(zip(pairs, resolved)):
        ratio = float(fp[j]) / float(tp[j]) if tp[j] > 0 else float("nan")
        rows.append({"target": p["target"], "coincident": p["coincident"], "target_iou": _num(iou[r.target]),
                     "confusion_ratio": _num(ratio), "fp": int(fp[j]), "tp": int(tp[j])})
        log.info("%s/%s: %s-%s ratio %s, %s IoU %s", label.stage, label.method, p["target"], p["coincident"],
                 rows[-1]["confusion_ratio"], p["target"], rows[-1]["target_iou"])
    summary = {"method": label.method, "stage": label.stage, "images": len(ids), "skipped": listed - len(ids),
               "pairs": rows}
    write_json(out_json, summary)
    return summary


def _num(x: float) -> float | None:
    return None if x != x else float(x)
