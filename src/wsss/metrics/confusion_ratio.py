"""Confusion ratio between a target class and its co-occurring scene class (EPS, CVPR 2021, Sec. 3/4).

m_{k,c} = FP_{k,c} / TP_c, where
- TP_c: pixels of ground-truth class c predicted as c;
- FP_{k,c}: pixels whose scene label is k (a context class such as railroad or water, from a
  scene-label map: `R/context/<id>.png`, 0 = none, 1.. = lines of `R/context/classes.txt`),
  whose ground truth is not c, and which are predicted as c.
Both are summed over all evaluated images before dividing. Pixels with ground truth 255 are left
out of both counts, as in the confusion matrix. A lower ratio means the prediction leaks less
onto the context that co-occurs with the object (the "railroad is not a train" problem).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wsss.core.io import IGNORE_INDEX, BadInputError, read_label_png
from wsss.core.parallel import chunks, in_item_order, map_chunks
from wsss.metrics.confusion_matrix import ConfusionMatrix


@dataclass(frozen=True)
class Pair:
    """A (target class index in the label maps, scene class index in the context maps) pair."""
    target: int
    coincident: int


@dataclass
class ConfusionRatioCounts:
    pairs: list[Pair]
    fp: np.ndarray = field(default=None)  # (P,) FP_{k,c} per pair
    tp: np.ndarray = field(default=None)  # (P,) TP_c per pair

    def __post_init__(self) -> None:
        n = len(self.pairs)
        self.fp = np.zeros(n, dtype=np.int64) if self.fp is None else np.asarray(self.fp, dtype=np.int64)
        self.tp = np.zeros(n, dtype=np.int64) if self.tp is None else np.asarray(self.tp, dtype=np.int64)

    def update(self, gt: np.ndarray, pred: np.ndarray, context: np.ndarray, name: str = "<array>") -> None:
        if not (gt.shape == pred.shape == context.shape):
            raise BadInputError(f"{name}: shapes differ (gt {gt.shape}, prediction {pred.shape}, scene labels "
                                f"{context.shape}); all must be at full image size")
        valid = gt != IGNORE_INDEX
        for j, p in enumerate(self.pairs):
            predicted = (pred == p.target) & valid
            self.tp[j] += int(np.count_nonzero(predicted & (gt == p.target)))
            self.fp[j] += int(np.count_nonzero(predicted & (gt != p.target) & (context == p.coincident)))

    def merge(self, other: "ConfusionRatioCounts") -> "ConfusionRatioCounts":
        if other.pairs != self.pairs:
            raise ValueError("cannot merge confusion-ratio counts of different class pairs")
        self.fp += other.fp
        self.tp += other.tp
        return self

    def ratios(self) -> np.ndarray:
        out = np.full(len(self.pairs), np.nan)
        np.divide(self.fp, self.tp, out=out, where=self.tp > 0)
        return out


def read_scene_classes(path: str | os.PathLike) -> list[str]:
    """`classes.txt` of the scene labels: line i (1-based) names scene label i."""
    try:
        return [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        raise BadInputError(f"{path}: scene-class list is missing; re-run the rule that prepares the scene "
                            "labels (synthesize_dataset, or prepare_context for VOC)") from None


def resolve_pairs(pairs: list[dict], class_names: list[str], scene_names: list[str]) -> list[Pair]:
    """Config pairs `{target: train, coincident: railroad}` → label indices (classes 1.., scene 1..)."""
    out = []
    for p in pairs:
        if p["target"] not in class_names:
            raise BadInputError(f"evaluation.confusion_pairs: target class '{p['target']}' is not one of the "
                                f"dataset classes {class_names}; fix the config")
        if p["coincident"] not in scene_names:
            raise BadInputError(f"evaluation.confusion_pairs: scene class '{p['coincident']}' is not in the "
                                f"scene-label list ({len(scene_names)} names, e.g. {scene_names[:8]}); fix the config")
        out.append(Pair(class_names.index(p["target"]) + 1, scene_names.index(p["coincident"]) + 1))
    return out


def _confusion_ratio_chunk(args: tuple) -> tuple[list[ConfusionRatioCounts], ConfusionMatrix]:
    pred_dir, gt_dir, context_dir, ids, pairs, num_classes = args
    per_image, cm = [], ConfusionMatrix(num_classes)
    for i in ids:
        pred_path = Path(pred_dir) / f"{i}.png"
        gt, pred = read_label_png(Path(gt_dir) / f"{i}.png"), read_label_png(pred_path)
        counts = ConfusionRatioCounts(list(pairs))
        counts.update(gt, pred, read_label_png(Path(context_dir) / f"{i}.png"), name=str(pred_path))
        per_image.append(counts)
        cm.update(gt, pred, name=str(pred_path))
    return per_image, cm


def evaluate_confusion_ratio_dirs(pred_dir: str | os.PathLike, gt_dir: str | os.PathLike,
                                  context_dir: str | os.PathLike,
                          ids: list[str], pairs: list[Pair], num_classes: int,
                          processes: int = 1) -> tuple[ConfusionRatioCounts, ConfusionMatrix, np.ndarray]:
    """Confusion-ratio counts and the confusion matrix (for the target IoU) over the same ids, and
    each id's counts, (N, P, 2) int64 FP_{k,c} and TP_c per pair in `ids` order (what a paired
    bootstrap resamples)."""
    if not ids:
        raise BadInputError(f"no ids to evaluate in {pred_dir}: none has a scene-label map in {context_dir}")
    args = [(str(pred_dir), str(gt_dir), str(context_dir), c, tuple(pairs), num_classes)
            for c in chunks(ids, processes)]
    counts, cm, per_image = ConfusionRatioCounts(list(pairs)), ConfusionMatrix(num_classes), []
    for chunk, m in map_chunks(_confusion_ratio_chunk, args, processes):
        for c in chunk:
            counts.merge(c)
            per_image.append(np.stack([c.fp, c.tp], axis=-1))
        cm.merge(m)
    return counts, cm, in_item_order(np.asarray(per_image, dtype=np.int64).reshape(len(ids), len(pairs), 2), processes)
