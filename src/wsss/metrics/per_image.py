"""Per-image confusion matrices of one prediction folder, kept sparse: what a paired bootstrap over
images (wsss.metrics.bootstrap) resamples.

A VOC image touches a handful of (ground truth, prediction) cells out of K x K, so the matrices are
stored as triplets (image index, cell = gt * K + pred, count) of their nonzero cells, plus the same
for the pixels a pseudo-mask leaves unlabelled (prediction 255: image, gt class, count). VOC val
(1,449 images, K = 21) is ~10k triplets instead of 639k cells; COCO val (40k images, K = 81) stays in
the megabytes where the dense (N, K, K) int64 array would take 2.1 GB.

Each image's counts are exactly what `ConfusionMatrix.update` adds for it (same ignore rules), so
the sum over images is the folder's `ConfusionMatrix`, bit for bit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wsss.core.io import BadInputError, atomic_path, read_label_png
from wsss.core.parallel import chunks, map_chunks
from wsss.metrics.confusion_matrix import ConfusionMatrix


@dataclass
class PerImageConfusion:
    ids: list[str]
    num_classes: int
    image: np.ndarray  # (M,) int64: index into ids
    cell: np.ndarray  # (M,) int64: gt * num_classes + pred
    count: np.ndarray  # (M,) int64, > 0
    ignored_image: np.ndarray  # (L,) int64: index into ids
    ignored_class: np.ndarray  # (L,) int64: the ground-truth class of pixels predicted 255
    ignored_count: np.ndarray  # (L,) int64, > 0

    @classmethod
    def from_matrices(cls, ids: list[str], matrices: np.ndarray, pred_ignored: np.ndarray | None = None):
        """From dense (N, K, K) matrices (gt x pred) and optional (N, K) unlabelled-pixel counts."""
        matrices = np.asarray(matrices, dtype=np.int64)
        n, k = matrices.shape[0], matrices.shape[1]
        if matrices.shape != (len(ids), k, k):
            raise ValueError(f"matrices of shape {matrices.shape} for {len(ids)} ids; expected (N, K, K)")
        ignored = np.zeros((n, k), np.int64) if pred_ignored is None else np.asarray(pred_ignored, np.int64)
        image, cell = np.nonzero(matrices.reshape(n, k * k))
        ig_image, ig_class = np.nonzero(ignored)
        return cls(list(ids), k, image, cell, matrices.reshape(n, k * k)[image, cell], ig_image, ig_class,
                   ignored[ig_image, ig_class])

    def __post_init__(self) -> None:
        for name in ("image", "cell", "count", "ignored_image", "ignored_class", "ignored_count"):
            setattr(self, name, np.asarray(getattr(self, name), dtype=np.int64))

    def total(self) -> ConfusionMatrix:
        """The folder's confusion matrix: the sum over images."""
        k = self.num_classes
        matrix = np.zeros(k * k, np.int64)
        np.add.at(matrix, self.cell, self.count)
        ignored = np.zeros(k, np.int64)
        np.add.at(ignored, self.ignored_class, self.ignored_count)
        return ConfusionMatrix(k, matrix.reshape(k, k), ignored)

    def dense(self) -> tuple[np.ndarray, np.ndarray]:
        """(N, K, K) matrices and (N, K) unlabelled-pixel counts (small sets only: N K^2 int64)."""
        n, k = len(self.ids), self.num_classes
        matrices = np.zeros((n, k * k), np.int64)
        matrices[self.image, self.cell] = self.count
        ignored = np.zeros((n, k), np.int64)
        ignored[self.ignored_image, self.ignored_class] = self.ignored_count
        return matrices.reshape(n, k, k), ignored

    def class_stats(self) -> np.ndarray:
        """(N, 3, K) float64 per image and class: true positives, ground-truth pixels (unlabelled
        predictions included, as ConfusionMatrix.gt_total), predicted pixels: all an IoU needs."""
        n, k = len(self.ids), self.num_classes
        stats = np.zeros((n, 3, k))
        gt, pred = np.divmod(self.cell, k)
        diagonal = gt == pred
        np.add.at(stats, (self.image[diagonal], 0, gt[diagonal]), self.count[diagonal])
        np.add.at(stats, (self.image, 1, gt), self.count)
        np.add.at(stats, (self.ignored_image, 1, self.ignored_class), self.ignored_count)
        np.add.at(stats, (self.image, 2, pred), self.count)
        return stats

    @classmethod
    def concat(cls, parts: list["PerImageConfusion"]) -> "PerImageConfusion":
        """The images of every part, in order (e.g. the shards of one evaluation)."""
        if not parts or len({p.num_classes for p in parts}) != 1:
            raise ValueError("concat needs at least one part, all with the same classes")
        offsets = np.cumsum([0] + [len(p.ids) for p in parts[:-1]])
        return cls([i for p in parts for i in p.ids], parts[0].num_classes,
                   np.concatenate([p.image + o for p, o in zip(parts, offsets)]),
                   np.concatenate([p.cell for p in parts]), np.concatenate([p.count for p in parts]),
                   np.concatenate([p.ignored_image + o for p, o in zip(parts, offsets)]),
                   np.concatenate([p.ignored_class for p in parts]), np.concatenate([p.ignored_count for p in parts]))

    # -- persistence -------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        with atomic_path(path, suffix=".npz") as tmp:
            np.savez_compressed(tmp, ids=np.array(self.ids, dtype=str), num_classes=self.num_classes,
                                image=self.image, cell=self.cell, count=self.count,
                                ignored_image=self.ignored_image, ignored_class=self.ignored_class,
                                ignored_count=self.ignored_count)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "PerImageConfusion":
        try:
            with np.load(path) as data:
                fields = {k: data[k] for k in ("image", "cell", "count", "ignored_image", "ignored_class",
                                               "ignored_count")}
                ids, k = [str(i) for i in data["ids"]], int(data["num_classes"])
        except FileNotFoundError:
            raise BadInputError(f"{path}: per-image confusion matrices are missing; re-run its evaluate rule") from None
        except (OSError, KeyError, ValueError) as err:
            raise BadInputError(f"{path}: not saved per-image confusion matrices ({err}); delete it and "
                                "re-run") from err
        return cls(ids, k, **fields)


def _per_image_chunk(args: tuple) -> list[tuple[int, np.ndarray, np.ndarray]]:
    pred_dir, gt_dir, indexed_ids, num_classes = args
    out = []
    for index, i in indexed_ids:
        pred_path = Path(pred_dir) / f"{i}.png"
        cm = ConfusionMatrix(num_classes).update(read_label_png(Path(gt_dir) / f"{i}.png"), read_label_png(pred_path),
                                                 name=str(pred_path))
        out.append((index, cm.matrix, cm.pred_ignored))
    return out


def evaluate_dirs_per_image(pred_dir: str | os.PathLike, gt_dir: str | os.PathLike, ids: list[str], num_classes: int,
                            processes: int = 1) -> PerImageConfusion:
    """`evaluate_dirs`, keeping each image's matrix; the result does not depend on `processes`."""
    if not ids:
        raise BadInputError(f"no ids to evaluate in {pred_dir}; check the split's id list")
    indexed = list(enumerate(ids))
    args = [(str(pred_dir), str(gt_dir), chunk, num_classes) for chunk in chunks(indexed, processes)]
    parts = {"image": [], "cell": [], "count": [], "ignored_image": [], "ignored_class": [], "ignored_count": []}
    for result in map_chunks(_per_image_chunk, args, processes):
        for index, matrix, ignored in result:
            cell = np.flatnonzero(matrix)
            parts["image"].append(np.full(cell.size, index))
            parts["cell"].append(cell)
            parts["count"].append(matrix.ravel()[cell])
            cls = np.flatnonzero(ignored)
            parts["ignored_image"].append(np.full(cls.size, index))
            parts["ignored_class"].append(cls)
            parts["ignored_count"].append(ignored[cls])
    merged = {key: np.concatenate(v) for key, v in parts.items()}  # one array per image: never empty
    order = np.lexsort((merged["cell"], merged["image"]))  # image order, whatever the chunking
    ig_order = np.lexsort((merged["ignored_class"], merged["ignored_image"]))
    return PerImageConfusion(list(ids), num_classes, merged["image"][order], merged["cell"][order],
                             merged["count"][order], merged["ignored_image"][ig_order],
                             merged["ignored_class"][ig_order], merged["ignored_count"][ig_order])
