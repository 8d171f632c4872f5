"""Pseudo-masks from localization maps (VOC-palette PNGs; label 0 background, 1..C classes).

- `cam`: each present class map divided by its max, a constant background plane (the official
  EPS/PSA code uses 0.2 on VOC; the project's prototype found 0.7 best on the toy data), argmax.
- `cam_sal`: the `cam` mask with pixels of saliency < 0.5 set to background (the usual
  "CAM × saliency" baseline).
- `eps`: argmax of the softmax over the present classes' maps plus the background map.
Also the CAM threshold sweep: mIoU against ground truth per background threshold.
"""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path

import numpy as np

from wsss.io import BadInputError, atomic_dir, atomic_path, load_maps, read_gray_png, read_id_list, \
    read_label_png, write_label_png
from wsss.metrics.confusion import ConfusionMatrix, map_chunks

log = logging.getLogger("wsss.pseudo_masks")

METHODS = ("cam", "cam_sal", "eps")


def _labels(classes: np.ndarray, index: np.ndarray, background_at_end: bool) -> np.ndarray:
    """Map argmax indices over [bg, classes...] (or [classes..., bg]) to VOC labels (uint8)."""
    lut = np.concatenate([[0], np.asarray(classes, dtype=np.int64) + 1]) if not background_at_end else \
        np.concatenate([np.asarray(classes, dtype=np.int64) + 1, [0]])
    return lut[index].astype(np.uint8)


def normalized_cams(maps: np.ndarray) -> np.ndarray:
    """(K, H, W) non-negative maps divided by their per-class max (1e-5 guards empty maps)."""
    peak = maps.reshape(len(maps), -1).max(axis=1) if len(maps) else np.zeros(0)
    return maps / (np.maximum(peak, 1e-5)[:, None, None])


def cam_mask(classes: np.ndarray, maps: np.ndarray, threshold: float) -> np.ndarray:
    """argmax over [threshold plane, max-normalised class maps] → (H, W) uint8 labels."""
    norm = normalized_cams(maps)
    stacked = np.concatenate([np.full((1,) + maps.shape[1:], threshold, dtype=np.float32), norm], axis=0)
    # Ties go to the background (index 0): argmax returns the first maximum.
    return _labels(classes, stacked.argmax(axis=0), background_at_end=False)


def cam_sal_mask(classes: np.ndarray, maps: np.ndarray, threshold: float, saliency: np.ndarray,
                 saliency_threshold: float = 0.5) -> np.ndarray:
    mask = cam_mask(classes, maps, threshold)
    if saliency.shape != mask.shape:
        raise BadInputError(f"saliency map {saliency.shape} and CAM {mask.shape} differ in size; "
                            "re-run infer_saliency and infer_cams")
    mask[saliency < saliency_threshold] = 0
    return mask


def eps_mask(classes: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """argmax of the restricted softmax (K+1, H, W), background last."""
    return _labels(classes, probs.argmax(axis=0), background_at_end=True)


def pseudo_mask(method: str, data: dict, threshold: float, saliency: np.ndarray | None = None,
                saliency_threshold: float = 0.5, name: str = "") -> np.ndarray:
    if method == "cam":
        return cam_mask(data["classes"], data["maps"], threshold)
    if method == "cam_sal":
        return cam_sal_mask(data["classes"], data["maps"], threshold, saliency, saliency_threshold)
    if method == "eps":
        if "probs" not in data:
            raise BadInputError(f"{name}: no 'probs' in this map file: it was not made by an eps classifier; "
                                "make eps pseudo-masks from results/cams/eps")
        return eps_mask(data["classes"], data["probs"])
    raise ValueError(f"unknown pseudo-mask method '{method}'; choose one of {METHODS}")


def _make_chunk(args: tuple) -> int:
    method, cams_dir, saliency_dir, ids, out_dir, threshold, sal_thr = args
    for i in ids:
        path = Path(cams_dir) / f"{i}.npz"
        sal = read_gray_png(Path(saliency_dir) / f"{i}.png") if method == "cam_sal" else None
        write_label_png(Path(out_dir) / f"{i}.png",
                        pseudo_mask(method, load_maps(path), threshold, sal, sal_thr, name=str(path)))
    return len(ids)


def make_pseudo_masks(method: str, cams_dir: str | os.PathLike, ids_file: str | os.PathLike,
                      out_dir: str | os.PathLike, threshold: float, saliency_dir: str | os.PathLike | None = None,
                      saliency_threshold: float = 0.5, processes: int = 1) -> int:
    """Write `<out_dir>/<id>.png` for every id of `ids_file` (atomically, as one folder)."""
    if method == "cam_sal" and saliency_dir is None:
        raise BadInputError("cam_sal pseudo-masks need saliency maps: give saliency_dir (results/saliency/maps)")
    ids = read_id_list(ids_file)
    with atomic_dir(out_dir) as tmp:
        chunks = [ids[k::max(1, processes * 4)] for k in range(max(1, processes * 4))]
        args = [(method, str(cams_dir), str(saliency_dir), c, str(tmp), threshold, saliency_threshold)
                for c in chunks if c]
        n = sum(map_chunks(_make_chunk, args, processes))
    log.info("%s pseudo-masks: %d images → %s", method, n, out_dir)
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
        best = _labels(data["classes"], norm.argmax(axis=0) + 1, False) if len(norm) else np.zeros(gt.shape, np.uint8)
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
    ids = read_id_list(ids_file)
    n = max(1, processes * 4) if processes > 1 else 1
    args = [(str(cams_dir), str(gt_dir), ids[k::n], list(thresholds), num_classes) for k in range(n) if ids[k::n]]
    totals = [ConfusionMatrix(num_classes) for _ in thresholds]
    for cms in map_chunks(_sweep_chunk, args, processes):
        for total, cm in zip(totals, cms):
            total.merge(cm)
    rows = [{"threshold": t, "miou": cm.miou(), "precision": float(np.nanmean(cm.precision())),
             "recall": float(np.nanmean(cm.recall()))} for t, cm in zip(thresholds, totals)]
    best = max(range(len(rows)), key=lambda k: rows[k]["miou"])
    for k, row in enumerate(rows):
        row["is_best"] = k == best
        row["is_configured"] = fixed_threshold is not None and abs(row["threshold"] - fixed_threshold) < 1e-9
    _write_csv(out_csv, rows)
    log.info("CAM threshold sweep: best %.2f (mIoU %.4f)", rows[best]["threshold"], rows[best]["miou"])
    return rows


def pseudo_mask_miou(mask_dirs: dict[str, str | os.PathLike], gt_dir: str | os.PathLike,
                     ids_file: str | os.PathLike, num_classes: int, out_csv: str | os.PathLike,
                     processes: int = 1) -> list[dict]:
    """mIoU of each method's pseudo-masks against ground truth on the ids of `ids_file` → CSV."""
    from wsss.metrics.confusion import evaluate_dirs

    ids = read_id_list(ids_file)
    rows = []
    for method, d in mask_dirs.items():
        cm = evaluate_dirs(d, gt_dir, ids, num_classes, processes)
        rows.append({"method": method, "miou": cm.miou(), "precision": float(np.nanmean(cm.precision())),
                     "recall": float(np.nanmean(cm.recall())), "images": len(ids)})
        log.info("%s pseudo-masks: mIoU %.4f on %d images", method, rows[-1]["miou"], len(ids))
    _write_csv(out_csv, rows)
    return rows


def _write_csv(path, rows: list[dict]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in row.items()})
