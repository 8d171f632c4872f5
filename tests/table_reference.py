"""The published tables recomputed from a finished run's own files, with numpy and scipy only.

A DAG test calls `check_tables(workdir, config)`: every row of miou.csv, miou_per_class.csv,
boundary.csv and confusion_ratio.csv (those the run wrote) must equal what the written-out
definitions give on the run's predicted PNGs and ground truth. It is the assertion the workflow tests
make about the tables' values; the reference tests of the metrics themselves live elsewhere.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from scipy.ndimage import distance_transform_edt

from wsss.core import results

STAGE_DIRS = {"pseudo": results.path("pseudo_masks", variant="", method="{m}"),
              "pseudo_crf": results.path("pseudo_masks_crf", method="{m}"),
              "deeplab": results.path("deeplab_pred", method="{m}"),
              "deeplab_crf": results.path("deeplab_pred_crf", method="{m}")}


def png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def pct(x: float) -> float:
    return round(100.0 * x, 2)


def split_ids(workdir: Path, config: dict, stage: str) -> list[str]:
    ev = config["evaluation"]
    split = ev["pseudo_mask_split"] if stage.startswith("pseudo") else ev["segmentation_split"]
    return (prepared(workdir, config) / "lists" / f"{split}.txt").read_text().split()


def prepared(workdir: Path, config: dict) -> Path:
    return workdir / config["dataset"]["root"] / "prepared"


def confusion(pred_dir: Path, gt_dir: Path, ids: list[str], n: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, n) counts [ground truth, prediction] over pixels whose ground truth is not 255, and the
    ground-truth pixels predicted 255 (unlabelled: a miss of their class), per class."""
    matrix, missed = np.zeros((n, n), np.int64), np.zeros(n, np.int64)
    for i in ids:
        gt, pred = png(gt_dir / f"{i}.png").astype(np.int64), png(pred_dir / f"{i}.png").astype(np.int64)
        valid = gt != 255
        g, p = gt[valid], pred[valid]
        matrix += np.bincount(g[p != 255] * n + p[p != 255], minlength=n * n).reshape(n, n)
        missed += np.bincount(g[p == 255], minlength=n)
    return matrix, missed


def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def scores(matrix: np.ndarray, missed: np.ndarray) -> dict:
    """IoU per class (NaN where a class is in neither ground truth nor prediction) and the means."""
    tp = np.diag(matrix).astype(float)
    gt, pred = matrix.sum(1) + missed, matrix.sum(0)
    iou, precision, recall = ratio(tp, gt + pred - tp), ratio(tp, pred), ratio(tp, gt)
    return {"iou": iou, "mIoU": np.nanmean(iou), "precision": np.nanmean(precision),
            "recall": np.nanmean(recall), "pixel_accuracy": tp.sum() / gt.sum()}


def folder_scores(workdir: Path, config: dict, pred_dir: Path, stage: str) -> tuple[int, dict]:
    """(images, scores) of one prediction folder on the split its stage is scored on."""
    ids = split_ids(workdir, config, stage)
    classes = (prepared(workdir, config) / "classes.txt").read_text().split()
    return len(ids), scores(*confusion(pred_dir, prepared(workdir, config) / "SegmentationClassAug", ids,
                                       len(classes) + 1))


def check_miou(workdir: Path, config: dict) -> int:
    tables = workdir / "results" / "tables"
    classes = (prepared(workdir, config) / "classes.txt").read_text().split()
    miou = pd.read_csv(tables / "miou.csv")
    per_class = pd.read_csv(tables / "miou_per_class.csv").set_index(["method", "stage"])
    for row in miou.itertuples():
        images, s = folder_scores(workdir, config, workdir / STAGE_DIRS[row.stage].format(m=row.method), row.stage)
        assert row.images == images, row
        got = [row.mIoU, row.precision, row.recall, row.pixel_accuracy]
        assert got == [pct(s[k]) for k in ("mIoU", "precision", "recall", "pixel_accuracy")], (row, s)
        class_row = per_class.loc[(row.method, row.stage)]
        np.testing.assert_array_equal(class_row[["background", *classes]].to_numpy(float),
                                      [pct(v) for v in s["iou"]], err_msg=str(row))
        assert class_row["mIoU"] == row.mIoU
    return len(miou)


def edges(label: np.ndarray) -> np.ndarray:
    """Pixels where the label map's Laplacian (4-neighbour sum − 4 × centre, the border reflected
    without repeating the edge pixel) is not zero: the paper's Laplacian edges. A pixel between two
    labels whose differences cancel (2 between 1 and 3) is no edge."""
    x = np.pad(label.astype(np.int64), 1, mode="reflect")
    lap = x[:-2, 1:-1] + x[2:, 1:-1] + x[1:-1, :-2] + x[1:-1, 2:] - 4 * x[1:-1, 1:-1]
    return lap != 0


def within(points: np.ndarray, targets: np.ndarray, tolerance: float) -> int:
    """How many `points` pixels have a `targets` pixel within Euclidean distance `tolerance`."""
    if not targets.any():
        return 0
    return int((distance_transform_edt(~targets)[points] <= tolerance).sum())


def check_boundary(workdir: Path, config: dict) -> int:
    table = pd.read_csv(workdir / results.path("table", table="boundary"))
    tolerance = config["evaluation"]["boundary_tolerance"]
    for row in table.itertuples():
        ids = split_ids(workdir, config, row.stage)
        counts = np.zeros(4, np.int64)  # predicted edges, matched; boundary pixels, recalled
        for i in ids:
            pred = edges(png(workdir / STAGE_DIRS[row.stage].format(m=row.method) / f"{i}.png"))
            gt = png(prepared(workdir, config) / "boundaries" / f"{i}.png") > 0
            counts += [pred.sum(), within(pred, gt, tolerance), gt.sum(), within(gt, pred, tolerance)]
        p, r = counts[1] / counts[0], counts[3] / counts[2]
        assert row.images == len(ids) and row.tolerance_px == tolerance, row
        assert [row.precision, row.recall, row.F1] == [pct(p), pct(r), pct(2 * p * r / (p + r))], (row, counts)
    return len(table)


def check_confusion_ratio(workdir: Path, config: dict) -> int:
    table = pd.read_csv(workdir / results.path("table", table="confusion_ratio"))
    root = workdir / config["dataset"]["root"]
    classes = (prepared(workdir, config) / "classes.txt").read_text().split()
    scene = (root / "context" / "classes.txt").read_text().split()
    for row in table.itertuples():
        ids = [i for i in split_ids(workdir, config, row.stage) if (root / "context" / f"{i}.png").exists()]
        target, coincident = classes.index(row.target) + 1, scene.index(row.coincident) + 1
        pred_dir = workdir / STAGE_DIRS[row.stage].format(m=row.method)
        tp = fp = 0
        for i in ids:
            gt, pred = png(prepared(workdir, config) / "SegmentationClassAug" / f"{i}.png"), png(pred_dir / f"{i}.png")
            context = png(root / "context" / f"{i}.png")
            as_target = (pred == target) & (gt != 255)
            tp += int((as_target & (gt == target)).sum())
            fp += int((as_target & (gt != target) & (context == coincident)).sum())
        iou = scores(*confusion(pred_dir, prepared(workdir, config) / "SegmentationClassAug", ids,
                                len(classes) + 1))["iou"][target]
        assert row.images == len(ids), row
        assert row.target_IoU == pct(iou), (row, iou)
        if tp:
            assert row.confusion_ratio == round(fp / tp, 3), (row, fp, tp)
        else:  # no true positive: no ratio
            assert np.isnan(row.confusion_ratio), row
    return len(table)


def check_tables(workdir: Path, config: dict) -> dict[str, int]:
    """Check every table the run wrote; returns the rows checked per table."""
    tables = workdir / "results" / "tables"
    checks = {"miou.csv": check_miou, "boundary.csv": check_boundary, "confusion_ratio.csv": check_confusion_ratio}
    return {name: check(workdir, config) for name, check in checks.items() if (tables / name).exists()}
