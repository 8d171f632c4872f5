"""Class-agnostic boundary precision / recall / F1 (EPS, CVPR 2021, Sec. 4: boundary quality
of the pseudo-masks against SBD's boundary annotations, predicted edges from a Laplacian).

- Predicted edges: the pixels where `cv2.Laplacian` of the label map is non-zero: on a two-label
  map every pixel with a 4-neighbour of the other label (edges are two pixels thick, one on each
  side of a label change). Where three labels meet, the neighbours' differences can cancel: a 2
  between a 1 and a 3 on its row, with 2 above and below, is not an edge. The image border is not
  an edge (OpenCV's default reflected border).
- Ground-truth boundaries: the prepared uint8 0/1 map (`R/prepared/boundaries/<id>.png`,
  the union of SBD's per-class boundary masks).
- Matching with a tolerance of `t` pixels: a predicted edge pixel is correct when a ground-truth
  boundary pixel lies within Euclidean distance t; a ground-truth pixel is recalled when a
  predicted edge pixel lies within t. (A distance-transform match, not BSDS's one-to-one
  assignment: cheaper, and the Laplacian's two-pixel edges would be halved by a bijection.)
- Counts are summed over the images before dividing (dataset-level P/R; F1 from those).
- Label 255 in a *prediction* (an unlabelled pixel of a pseudo-mask) is treated as a region of
  its own: the border of an unlabelled region is a predicted edge, because that is where the
  prediction puts a change. The ground truth's 255 band plays no role here: the reference is the
  SBD boundary map, which has no void label.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from wsss.core.io import BadInputError, read_label_png
from wsss.core.parallel import chunks, in_item_order, map_chunks


def label_edges(label: np.ndarray) -> np.ndarray:
    """Bool (H, W): non-zero Laplacian of the label map (class-agnostic edges)."""
    # int16 output: label differences up to 255*4 fit, and no saturation hides an edge.
    lap = cv2.Laplacian(np.ascontiguousarray(label, dtype=np.uint8), cv2.CV_16S, ksize=1)
    return lap != 0


def _distance_to(mask: np.ndarray) -> np.ndarray:
    """Euclidean distance of every pixel to the nearest True pixel of `mask` (inf if none)."""
    if not mask.any():
        return np.full(mask.shape, np.inf, dtype=np.float32)
    # distanceTransform measures the distance to the nearest zero pixel: zero where mask is True.
    return cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


@dataclass
class BoundaryCounts:
    """Pixel counts from which precision/recall/F1 derive; sums over images and shards."""
    pred_edges: int = 0
    pred_matched: int = 0
    gt_edges: int = 0
    gt_matched: int = 0
    images: int = 0

    def __add__(self, other: "BoundaryCounts") -> "BoundaryCounts":
        return BoundaryCounts(*(a + b for a, b in zip(self.as_tuple(), other.as_tuple())))

    def as_tuple(self) -> tuple[int, ...]:
        return (self.pred_edges, self.pred_matched, self.gt_edges, self.gt_matched, self.images)

    @property
    def precision(self) -> float:
        return self.pred_matched / self.pred_edges if self.pred_edges else float("nan")

    @property
    def recall(self) -> float:
        return self.gt_matched / self.gt_edges if self.gt_edges else float("nan")

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        if np.isnan(p) or np.isnan(r):
            return float("nan")
        return 2 * p * r / (p + r) if p + r > 0 else 0.0

    def summary(self) -> dict:
        return {"precision": self.precision, "recall": self.recall, "f1": self.f1,
                "pred_edges": self.pred_edges, "pred_matched": self.pred_matched,
                "gt_edges": self.gt_edges, "gt_matched": self.gt_matched, "images": self.images}


def boundary_counts(pred_label: np.ndarray, gt_boundary: np.ndarray, tolerance: float,
                    name: str = "<array>") -> BoundaryCounts:
    """Counts for one image: `pred_label` (H, W) label map, `gt_boundary` (H, W) 0/1 (or bool)."""
    if pred_label.shape != gt_boundary.shape:
        raise BadInputError(f"{name}: prediction shape {pred_label.shape} != boundary map shape "
                            f"{gt_boundary.shape}; predictions must be at full image size")
    if tolerance < 0:
        raise ValueError(f"boundary tolerance must be >= 0, got {tolerance}")
    gt = np.asarray(gt_boundary)
    if gt.dtype != bool:
        if gt.size and gt.max() > 1:
            raise BadInputError(f"{name}: boundary map holds values other than 0/1 (max {gt.max()}); "
                                "the prepared boundaries must be uint8 0/1 — re-run prepare_dataset")
        gt = gt.astype(bool)
    pred = label_edges(pred_label)
    # A tiny epsilon so that a distance of exactly t (e.g. 1 px) counts despite float rounding.
    pred_ok = _distance_to(gt)[pred] <= tolerance + 1e-4
    gt_ok = _distance_to(pred)[gt] <= tolerance + 1e-4
    return BoundaryCounts(int(pred.sum()), int(pred_ok.sum()), int(gt.sum()), int(gt_ok.sum()), 1)


def _boundary_chunk(args: tuple) -> list[BoundaryCounts]:
    pred_dir, boundary_dir, ids, tolerance = args
    out = []
    for i in ids:
        pred_path = Path(pred_dir) / f"{i}.png"
        gt = read_label_png(Path(boundary_dir) / f"{i}.png")
        out.append(boundary_counts(read_label_png(pred_path), gt, tolerance, name=str(pred_path)))
    return out


def boundary_counts_per_image(pred_dir: str | os.PathLike, boundary_dir: str | os.PathLike, ids: list[str],
                              tolerance: float, processes: int = 1) -> np.ndarray:
    """(N, 4) int64 counts of each id, in `ids` order: predicted edges, matched ones, ground-truth
    edges, recalled ones (what a paired bootstrap of F1 resamples)."""
    if not ids:
        raise BadInputError(f"no ids to evaluate in {pred_dir}; check the split's id list")
    args = [(str(pred_dir), str(boundary_dir), c, tolerance) for c in chunks(ids, processes)]
    rows = [c.as_tuple()[:4] for chunk in map_chunks(_boundary_chunk, args, processes) for c in chunk]
    return in_item_order(np.asarray(rows, dtype=np.int64).reshape(len(ids), 4), processes)


def evaluate_boundaries(pred_dir: str | os.PathLike, boundary_dir: str | os.PathLike, ids: list[str],
                        tolerance: float, processes: int = 1) -> BoundaryCounts:
    """Summed boundary counts of `<pred_dir>/<id>.png` against `<boundary_dir>/<id>.png`."""
    counts = boundary_counts_per_image(pred_dir, boundary_dir, ids, tolerance, processes).sum(0)
    return BoundaryCounts(*(int(v) for v in counts), len(ids))
