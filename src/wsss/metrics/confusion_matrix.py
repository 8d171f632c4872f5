"""Segmentation confusion matrix: mIoU, per-class IoU, precision, recall, pixel accuracy.

One integer matrix, rows = ground truth, columns = prediction (scikit-learn's convention),
accumulated with a single `np.bincount` per image. Integer counts make the sum over
images (or shards, or worker processes) exact and order-independent, so a parallel run
gives bit-identical numbers to the serial loop.

Ignore handling (documented in config/README.md, section `evaluation`):
- ground truth 255: the pixel is not counted at all (VOC's object-border band);
- prediction 255 (a pseudo-mask that leaves a pixel unlabelled): counted as a miss of the
  true class (a false negative, lowers recall and IoU) but as a false positive of no class.
  This is what the official VOC/PSA/EPS evaluation code does (`cal = gt < 255`);
- any other value outside [0, num_classes) is bad input and stops with the file named.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wsss.core.io import IGNORE_INDEX, BadInputError, atomic_path, read_label_png
from wsss.core.parallel import chunks, map_chunks


@dataclass
class ConfusionMatrix:
    num_classes: int
    matrix: np.ndarray = field(default=None)  # (C, C) int64, gt x pred
    pred_ignored: np.ndarray = field(default=None)  # (C,) int64: gt class c predicted as 255

    def __post_init__(self) -> None:
        c = self.num_classes
        if not 1 <= c <= IGNORE_INDEX:  # 8-bit label maps: 255 is the ignore label, not a class
            raise ValueError(f"num_classes must be in 1..{IGNORE_INDEX}, got {c}")
        if self.matrix is None:
            self.matrix = np.zeros((c, c), dtype=np.int64)
        if self.pred_ignored is None:
            self.pred_ignored = np.zeros(c, dtype=np.int64)
        self.matrix = np.asarray(self.matrix, dtype=np.int64)
        self.pred_ignored = np.asarray(self.pred_ignored, dtype=np.int64)
        if self.matrix.shape != (c, c) or self.pred_ignored.shape != (c,):
            raise ValueError(f"confusion matrix shapes {self.matrix.shape}/{self.pred_ignored.shape} "
                             f"do not match num_classes={c}")

    # -- accumulation ----------------------------------------------------------------------
    def update(self, gt: np.ndarray, pred: np.ndarray, name: str = "<array>") -> "ConfusionMatrix":
        """Add one image. `name` (the file or id) goes into error messages."""
        gt = np.asarray(gt)
        pred = np.asarray(pred)
        if gt.shape != pred.shape:
            raise BadInputError(f"{name}: prediction shape {pred.shape} != ground-truth shape {gt.shape}; "
                                "predictions must be at full image size (re-run the producing rule)")
        c = self.num_classes
        # Work on the uint8 maps and widen only the final index: this loop runs once per image
        # and costs as much as decoding the PNG if every step is done in int64.
        if gt.dtype != np.uint8 or pred.dtype != np.uint8:
            if min(gt.min(initial=0), pred.min(initial=0)) < 0 or max(gt.max(initial=0), pred.max(initial=0)) > 255:
                raise BadInputError(f"{name}: label values outside 0..255; not a label map")
        gt = np.ascontiguousarray(gt, dtype=np.uint8).ravel()
        pred = np.ascontiguousarray(pred, dtype=np.uint8).ravel()
        valid = gt != IGNORE_INDEX
        if not valid.all():
            gt, pred = gt[valid], pred[valid]
        if gt.size and gt.max() >= c:
            raise BadInputError(f"{name}: ground truth holds class {int(gt[gt >= c][0])} outside 0..{c - 1} "
                                "(and not 255); check dataset.classes against the label PNGs")
        unlabelled = pred == IGNORE_INDEX
        if unlabelled.any():
            self.pred_ignored += np.bincount(gt[unlabelled], minlength=c)
            gt, pred = gt[~unlabelled], pred[~unlabelled]
        if pred.size and pred.max() >= c:
            raise BadInputError(f"{name}: prediction holds class {int(pred[pred >= c][0])} outside 0..{c - 1} "
                                "(and not 255); it was made for another class list — re-run its rule")
        self.matrix += np.bincount(gt.astype(np.intp) * c + pred, minlength=c * c).reshape(c, c)
        return self

    def merge(self, other: "ConfusionMatrix") -> "ConfusionMatrix":
        """Add another matrix in place (shards, worker processes)."""
        if other.num_classes != self.num_classes:
            raise ValueError(f"cannot merge confusion matrices of {self.num_classes} and {other.num_classes} classes")
        self.matrix += other.matrix
        self.pred_ignored += other.pred_ignored
        return self

    def __add__(self, other: "ConfusionMatrix") -> "ConfusionMatrix":
        out = ConfusionMatrix(self.num_classes, self.matrix.copy(), self.pred_ignored.copy())
        return out.merge(other)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, ConfusionMatrix) and other.num_classes == self.num_classes
                and np.array_equal(other.matrix, self.matrix)
                and np.array_equal(other.pred_ignored, self.pred_ignored))

    # -- metrics ---------------------------------------------------------------------------
    # A class absent from both ground truth and prediction has 0/0: NaN, left out of the means
    # (np.nanmean), rather than counted as 0 or 1, which would bias mIoU on small subsets.
    @property
    def tp(self) -> np.ndarray:
        return np.diag(self.matrix).astype(np.float64)

    @property
    def gt_total(self) -> np.ndarray:
        return self.matrix.sum(axis=1) + self.pred_ignored

    @property
    def pred_total(self) -> np.ndarray:
        return self.matrix.sum(axis=0)

    def iou(self) -> np.ndarray:
        return _div(self.tp, self.gt_total + self.pred_total - self.tp)

    def precision(self) -> np.ndarray:
        return _div(self.tp, self.pred_total)

    def recall(self) -> np.ndarray:
        return _div(self.tp, self.gt_total)

    def miou(self) -> float:
        return _nanmean(self.iou())

    def pixel_accuracy(self) -> float:
        total = self.gt_total.sum()
        return float(self.tp.sum() / total) if total else float("nan")

    def summary(self, class_names: list[str] | None = None) -> dict:
        """Scalar metrics (means over classes) plus per-class lists, JSON-ready."""
        names = class_names or [str(i) for i in range(self.num_classes)]
        if len(names) != self.num_classes:
            raise ValueError(f"{len(names)} class names for {self.num_classes} classes")
        return {
            "miou": self.miou(), "precision": _nanmean(self.precision()), "recall": _nanmean(self.recall()),
            "pixel_accuracy": self.pixel_accuracy(), "pixels": int(self.gt_total.sum()),
            "classes": list(names), "iou": _list(self.iou()),
            "class_precision": _list(self.precision()), "class_recall": _list(self.recall()),
        }

    # -- persistence -------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        with atomic_path(path, suffix=".npz") as tmp:
            np.savez(tmp, matrix=self.matrix, pred_ignored=self.pred_ignored)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ConfusionMatrix":
        try:
            with np.load(path) as data:
                matrix, ignored = data["matrix"], data["pred_ignored"]
        except FileNotFoundError:
            raise BadInputError(f"{path}: confusion matrix is missing; re-run its evaluate rule") from None
        except (OSError, KeyError, ValueError) as err:
            raise BadInputError(f"{path}: not a saved ConfusionMatrix ({err}); delete it and re-run") from err
        return cls(matrix.shape[0], matrix, ignored)


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full_like(num, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _nanmean(values: np.ndarray) -> float:
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else float("nan")


def _list(values: np.ndarray) -> list:
    return [None if np.isnan(v) else float(v) for v in values]


# -- many PNGs, in parallel ------------------------------------------------------------------------
def _evaluate_chunk(args: tuple) -> ConfusionMatrix:
    pred_dir, gt_dir, ids, num_classes = args
    cm = ConfusionMatrix(num_classes)
    for i in ids:
        pred_path = Path(pred_dir) / f"{i}.png"
        cm.update(read_label_png(Path(gt_dir) / f"{i}.png"), read_label_png(pred_path), name=str(pred_path))
    return cm


def evaluate_dirs(pred_dir: str | os.PathLike, gt_dir: str | os.PathLike, ids: list[str],
                  num_classes: int, processes: int = 1) -> ConfusionMatrix:
    """Confusion matrix of `<pred_dir>/<id>.png` against `<gt_dir>/<id>.png` over `ids`.

    The result does not depend on `processes` (integer sums). A missing or corrupt PNG stops
    with a BadInputError naming it.
    """
    if not ids:
        raise BadInputError(f"no ids to evaluate in {pred_dir}; check the split's id list")
    args = [(str(pred_dir), str(gt_dir), chunk, num_classes) for chunk in chunks(ids, processes)]
    total = ConfusionMatrix(num_classes)
    for cm in map_chunks(_evaluate_chunk, args, processes):
        total.merge(cm)
    return total
