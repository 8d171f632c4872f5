"""Evaluation metrics: confusion matrix (mIoU & co.), boundary P/R/F1, confusion ratio."""

from wsss.metrics.boundary import BoundaryCounts, boundary_counts, evaluate_boundaries, label_edges
from wsss.metrics.confusion import ConfusionMatrix, evaluate_dirs
from wsss.metrics.cooccurrence import (CooccurrenceCounts, Pair, evaluate_cooccurrence, read_scene_classes,
                                       resolve_pairs)

__all__ = [
    "BoundaryCounts", "ConfusionMatrix", "CooccurrenceCounts", "Pair", "boundary_counts", "evaluate_boundaries",
    "evaluate_cooccurrence", "evaluate_dirs", "label_edges", "read_scene_classes", "resolve_pairs",
]
