"""Stage make_pseudo_masks: pseudo-masks from localization maps (VOC-palette PNGs; label 0
background, 1..C classes), by the rule of the method's record (wsss.methods.cam, wsss.methods.eps).
Also the CAM threshold sweep: mIoU against ground truth per background threshold.
"""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path

import numpy as np

from wsss.core.io import (
    BadInputError,
    atomic_dir,
    atomic_path,
    load_maps,
    read_gray_png,
    read_id_list,
    read_label_png,
    write_label_png,
)
from wsss.core.parallel import chunks, map_chunks
from wsss.core.sharding import shard_ids, shard_ids_within
from wsss.methods import Method, resolve
from wsss.methods.cam import labels_from_argmax, normalized_cams
from wsss.metrics.confusion_matrix import ConfusionMatrix

log = logging.getLogger(__name__)


def pseudo_mask(record: Method, data: dict, params: dict, saliency: np.ndarray | None = None) -> np.ndarray:
    """The pseudo-mask of one image by the method's rule, from its loaded map file."""
    if record.pseudo_mask is None:
        raise ValueError(f"method {record.name!r} makes no pseudo-masks (its masks are the ground truth)")
    return resolve(record.pseudo_mask)(data, saliency, params)


def _make_chunk(args: tuple) -> int:
    record, cams_dir, saliency_dir, ids, out_dir, params = args
    for i in ids:
        path = Path(cams_dir) / f"{i}.npz"
        sal = read_gray_png(Path(saliency_dir) / f"{i}.png") if saliency_dir is not None else None
        try:
            mask = pseudo_mask(record, load_maps(path), params, sal)
        except BadInputError as err:
            raise BadInputError(f"{path}: {err}") from err
        write_label_png(Path(out_dir) / f"{i}.png", mask)
    return len(ids)


def make_pseudo_masks(record: Method, cams_dir: str | os.PathLike, ids_file: str | os.PathLike,
                      out_dir: str | os.PathLike, params: dict, saliency_dir: str | os.PathLike | None = None,
                      processes: int = 1, shard: int = 0, num_shards: int = 1) -> int:
    """Write `<out_dir>/<id>.png` for this shard's ids of `ids_file` (atomically, as one folder).
    An image's mask never depends on the shards or processes.

    `params` are the method's `pseudo_masks` keys (wsss.config.settings.pseudo_mask_params).
    """
    if record.needs_saliency and saliency_dir is None:
        raise BadInputError(f"{record.name} pseudo-masks need saliency maps: give saliency_dir (results/saliency/maps)")
    ids = shard_ids(read_id_list(ids_file), shard, num_shards)
    sal_dir = str(saliency_dir) if record.needs_saliency else None
    with atomic_dir(out_dir) as tmp:
        args = [(record, str(cams_dir), sal_dir, c, str(tmp), dict(params)) for c in chunks(ids, processes)]
        n = sum(map_chunks(_make_chunk, args, processes))
    log.info("%s pseudo-masks: %d images → %s", record.name, n, out_dir)
    return n


# ----------------------------------------------------------------------------- CAM threshold sweep
def _sweep_chunk(args: tuple) -> list[ConfusionMatrix]:
    cams_dir, gt_dir, ids, thresholds, num_classes = args
    cms = [ConfusionMatrix(num_classes) for _ in thresholds]
    for i in ids:
        data = load_maps(Path(cams_dir) / f"{i}.npz")
        gt_path = Path(gt_dir) / f"{i}.png"
        gt = read_label_png(gt_path)
        norm = normalized_cams(data["maps"])
        peak = norm.max(axis=0) if len(norm) else np.zeros(gt.shape, np.float32)
        best = (labels_from_argmax(data["classes"], norm.argmax(axis=0) + 1) if len(norm)
                else np.zeros(gt.shape, np.uint8))
        for cm, t in zip(cms, thresholds):
            # same as cam_mask: background wins where no class map exceeds the threshold (ties too)
            cm.update(gt, np.where(peak > t, best, 0).astype(np.uint8), name=str(gt_path))
    return cms


def cam_threshold_sweep(cams_dir: str | os.PathLike, gt_dir: str | os.PathLike, ids_file: str | os.PathLike,
                        thresholds: list[float], num_classes: int, out_csv: str | os.PathLike,
                        fixed_threshold: float | None = None, processes: int = 1) -> list[dict]:
    """mIoU of `cam` pseudo-masks against ground truth for each background threshold → CSV.

    `num_classes` counts the background. Columns: threshold, miou, precision, recall, is_best,
    is_configured (the threshold make_pseudo_masks uses), so a report can show both honestly.
    """
    totals = threshold_counts(cams_dir, gt_dir, read_id_list(ids_file), thresholds, num_classes, processes)
    return sweep_table(totals, thresholds, out_csv, fixed_threshold)


def threshold_counts(cams_dir: str | os.PathLike, gt_dir: str | os.PathLike, ids: list[str],
                     thresholds: list[float], num_classes: int, processes: int = 1) -> list[ConfusionMatrix]:
    """One confusion matrix per threshold, summed over `ids` (integer counts: any split sums exactly)."""
    args = [(str(cams_dir), str(gt_dir), c, list(thresholds), num_classes) for c in chunks(ids, processes)]
    totals = [ConfusionMatrix(num_classes) for _ in thresholds]
    for cms in map_chunks(_sweep_chunk, args, processes):
        for total, cm in zip(totals, cms):
            total.merge(cm)
    return totals


def cam_threshold_sweep_shard(cams_dir: str | os.PathLike, gt_dir: str | os.PathLike, ids_file: str | os.PathLike,
                              sharded_by: str | os.PathLike, shard: int, num_shards: int, thresholds: list[float],
                              num_classes: int, out_npz: str | os.PathLike, processes: int = 1) -> int:
    """The sweep's counts over one shard (rule cam_threshold_sweep_shard): the ids of `ids_file` in
    shard `shard` of `sharded_by` (train_aug), whose map files are that shard's (`cams_dir`)."""
    ids = shard_ids_within(read_id_list(ids_file), read_id_list(sharded_by), shard, num_shards)
    totals = threshold_counts(cams_dir, gt_dir, ids, thresholds, num_classes, processes)
    with atomic_path(out_npz) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, thresholds=np.array(thresholds, np.float64), matrix=np.stack([cm.matrix for cm in totals]),
                 pred_ignored=np.stack([cm.pred_ignored for cm in totals]))
    log.info("CAM threshold sweep, shard %d: %d images", shard, len(ids))
    return len(ids)


def merge_threshold_sweep(shard_files: list[str | os.PathLike], thresholds: list[float], num_classes: int,
                          out_csv: str | os.PathLike, fixed_threshold: float | None = None) -> list[dict]:
    """Sum the shards' counts into the sweep table (rule cam_threshold_sweep): the numbers of one
    cam_threshold_sweep over all their ids."""
    totals = [ConfusionMatrix(num_classes) for _ in thresholds]
    for path in shard_files:
        with np.load(path) as data:
            if data["thresholds"].tolist() != [float(t) for t in thresholds]:
                raise BadInputError(f"{path}: thresholds {data['thresholds'].tolist()} are not {list(thresholds)}; "
                                    "rerun cam_threshold_sweep_shard")
            for k, total in enumerate(totals):
                total.merge(ConfusionMatrix(num_classes, data["matrix"][k], data["pred_ignored"][k]))
    return sweep_table(totals, thresholds, out_csv, fixed_threshold)


def sweep_table(totals: list[ConfusionMatrix], thresholds: list[float], out_csv: str | os.PathLike,
                fixed_threshold: float | None = None) -> list[dict]:
    """The sweep's rows from its per-threshold counts, written to `out_csv`."""
    rows = [{"threshold": t, "miou": cm.miou(), "precision": float(np.nanmean(cm.precision())),
             "recall": float(np.nanmean(cm.recall()))} for t, cm in zip(thresholds, totals)]
    best = max(range(len(rows)), key=lambda k: rows[k]["miou"])
    for k, row in enumerate(rows):
        row["is_best"] = k == best
        row["is_configured"] = fixed_threshold is not None and abs(row["threshold"] - fixed_threshold) < 1e-9
    _write_csv(out_csv, rows)
    log.info("CAM threshold sweep: best %.2f (mIoU %.4f)", rows[best]["threshold"], rows[best]["miou"])
    return rows


def _write_csv(path, rows: list[dict]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in row.items()})
