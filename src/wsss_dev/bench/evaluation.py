"""Evaluation throughput: `evaluate_dirs` with 1 and N worker processes over the same PNGs.

The masks are VOC-sized (500×375, a few rectangles of random classes) and the predictions the
same masks shifted, written once to a temporary folder: the embedded benchmark's 64 px masks
decode so fast that pool start-up would dominate and say nothing about real evaluation.
Like the CRF bench, it checks that every process count gives the identical matrix.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from wsss.core.io import write_label_png
from wsss.metrics import evaluate_dirs


def write_masks(root: Path, n: int, num_classes: int, shape=(375, 500), seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    ids = [f"bench_{i:05d}" for i in range(n)]
    for i in ids:
        gt = np.zeros(shape, np.uint8)
        for _ in range(3):
            y, x = rng.integers(0, shape[0] - 40), rng.integers(0, shape[1] - 40)
            gt[y:y + int(rng.integers(20, 160)), x:x + int(rng.integers(20, 200))] = rng.integers(1, num_classes)
        write_label_png(root / "gt" / f"{i}.png", gt)
        write_label_png(root / "pred" / f"{i}.png", np.roll(gt, int(rng.integers(-5, 6)), axis=1))
    return ids


def bench_evaluation(images: int = 1449, num_classes: int = 21, processes: Sequence[int] = (1, 2),
                     repeats: int = 3) -> list[dict]:
    """One row per process count: seconds (best of `repeats`, pool start-up included), images/s,
    speed-up over the first count, and whether the confusion matrix is identical."""
    rows, matrices = [], {}
    with tempfile.TemporaryDirectory(prefix="bench_eval.") as tmp:
        root = Path(tmp)
        ids = write_masks(root, images, num_classes)
        for n in processes:
            best = float("inf")
            for _ in range(repeats):
                t0 = time.perf_counter()
                matrices[n] = evaluate_dirs(root / "pred", root / "gt", ids, num_classes, processes=n)
                best = min(best, time.perf_counter() - t0)
            rows.append({"stage": "evaluation", "processes": n, "images": len(ids), "seconds": round(best, 4),
                         "images_per_s": round(len(ids) / best, 2)})
    for row in rows:
        row["speedup"] = round(rows[0]["seconds"] / row["seconds"], 3)
        row["identical_output"] = matrices[row["processes"]] == matrices[processes[0]]
    return rows
