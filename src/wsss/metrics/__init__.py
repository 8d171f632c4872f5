"""Evaluation metrics: confusion matrix (mIoU & co.), boundary P/R/F1, confusion ratio."""

from wsss.metrics.boundary import BoundaryCounts, boundary_counts, evaluate_boundaries, label_edges
from wsss.metrics.confusion_matrix import ConfusionMatrix, evaluate_dirs
from wsss.metrics.confusion_ratio import (
                                       ConfusionRatioCounts,
                                       Pair,
                                       evaluate_confusion_ratio_dirs,
                                       read_scene_classes,
                                       resolve_pairs,
)

__all__ = [
    "BoundaryCounts", "ConfusionMatrix", "ConfusionRatioCounts", "Pair", "boundary_counts", "evaluate_boundaries",
    "evaluate_confusion_ratio_dirs", "evaluate_dirs", "label_edges", "read_scene_classes", "resolve_pairs",
]
