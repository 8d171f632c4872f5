"""Salient-object metrics: MAE and max F-measure (beta^2 = 0.3), plus a centre-prior baseline.

Conventions of the salient-object-detection literature (e.g. Achanta et al. 2009 for beta^2 = 0.3):
ground truth is binarised at 0.5; a prediction is quantised to 8 bits and binarised at every
threshold t in 0..255 (pixel >= t is salient); precision and recall are averaged over images per
threshold, F is computed from the averages, and max F is the best F over thresholds.
"""

from __future__ import annotations

import numpy as np

BETA2 = 0.3
_LEVELS = 256


def centre_prior(height: int, width: int, sigma: float = 0.25) -> np.ndarray:
    """An isotropic Gaussian at the image centre, sigma as a fraction of each side; peak 1."""
    y = (np.arange(height, dtype=np.float32) + 0.5) / height - 0.5
    x = (np.arange(width, dtype=np.float32) + 0.5) / width - 0.5
    d2 = y[:, None] ** 2 + x[None, :] ** 2
    return np.exp(-d2 / (2 * sigma ** 2)).astype(np.float32)


class SaliencyScores:
    """Accumulates MAE and the per-threshold precision/recall over images."""

    def __init__(self) -> None:
        self.n = 0
        self.mae_sum = 0.0
        self.precision_sum = np.zeros(_LEVELS, dtype=np.float64)
        self.recall_sum = np.zeros(_LEVELS, dtype=np.float64)

    def add(self, pred: np.ndarray, gt: np.ndarray) -> None:
        """pred, gt: (H, W) maps in [0, 1] of the same size."""
        pred, gt = np.asarray(pred, dtype=np.float32), np.asarray(gt, dtype=np.float32)
        if pred.shape != gt.shape:
            raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} differ in size")
        positive = gt >= 0.5
        self.mae_sum += float(np.abs(pred - positive).mean())
        q = np.clip(np.rint(pred * 255.0), 0, 255).astype(np.int64)
        # tp(t) / predicted(t) for "q >= t": reverse cumulative histograms.
        tp = np.bincount(q[positive], minlength=_LEVELS)[::-1].cumsum()[::-1]
        predicted = np.bincount(q.ravel(), minlength=_LEVELS)[::-1].cumsum()[::-1]
        n_pos = int(positive.sum())
        self.precision_sum += np.where(predicted > 0, tp / np.maximum(predicted, 1), 0.0)
        self.recall_sum += tp / n_pos if n_pos else 0.0
        self.n += 1

    def result(self) -> dict[str, float]:
        if self.n == 0:
            raise ValueError("no images were scored")
        p, r = self.precision_sum / self.n, self.recall_sum / self.n
        f = (1 + BETA2) * p * r / np.maximum(BETA2 * p + r, 1e-12)
        best = int(np.argmax(f))
        return {"mae": self.mae_sum / self.n, "max_f": float(f[best]),
                "best_threshold": best / 255.0, "n_images": self.n}
