"""Stage table_intervals: how sure each number of the tables is, from one run.

Every evaluation job keeps its per-image counts (confusion matrices for mIoU, edge counts for the
boundary F1, FP/TP counts for each confusion ratio). A paired bootstrap over images
(wsss.metrics.bootstrap: the same resampled ids for every method of a stage) gives a percentile
interval for each method's value and for each configured difference (EPS − CAM): a gap whose
interval holds 0 is not shown by this run alone. The seeds grid (`make seeds`) is the other half:
the spread across training runs, which a bootstrap over images cannot see.
"""

from __future__ import annotations

import logging
import os

import numpy as np
import pandas as pd

from wsss.core.io import BadInputError, atomic_path
from wsss.metrics.bootstrap import f1_of_counts, paired_bootstrap_stats, ratio_of_counts
from wsss.metrics.per_image import PerImageConfusion
from wsss.stages.evaluation import load_counts

log = logging.getLogger(__name__)

COLUMNS = ["table", "metric", "stage", "method", "estimate", "low", "high", "images", "resamples", "level", "seed"]


def _per_image(table: str, path: str | os.PathLike) -> tuple[list[str], np.ndarray]:
    if table == "miou":
        data = PerImageConfusion.load(path)
        return list(data.ids), data.class_stats()
    return load_counts(path)


def _aligned(ids: list[str], stats: np.ndarray, order: list[str], path) -> np.ndarray:
    if sorted(ids) != sorted(order):
        raise BadInputError(f"{path}: scores other images than the other methods of its stage; rerun the "
                            "evaluation rules on one split")
    where = {i: n for n, i in enumerate(ids)}
    return stats[[where[i] for i in order]]


def _metrics(table: str, stats: np.ndarray, pairs: list[dict]) -> list[tuple[str, np.ndarray, object, float]]:
    """(metric name, per-image statistics, statistic, scale) of one table's per-image data."""
    if table == "miou":
        return [("mIoU", stats, None, 100.0)]
    if table == "boundary":
        return [("F1", stats, f1_of_counts, 100.0)]
    return [(f"confusion_{p['coincident']}_{p['target']}", stats[:, j, :], ratio_of_counts, 1.0)
            for j, p in enumerate(pairs)]


def table_intervals(entries: list[dict], comparisons: list[list[str]], pairs: list[dict], out_csv: str,
                    resamples: int = 1000, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """intervals.csv from the per-image files of `entries` ({table, stage, method, file}): each
    method's value and each comparison [a, b] (a − b) with its paired percentile interval.
    mIoU and F1 in %, confusion ratios as ratios; `pairs` are the confusion ratio's (target,
    coincident) pairs in the order the evaluation stored them."""
    groups: dict[tuple[str, str], dict[str, tuple[list[str], np.ndarray, str]]] = {}
    for e in entries:
        groups.setdefault((e["table"], e["stage"]), {})[e["method"]] = (*_per_image(e["table"], e["file"]), e["file"])
    rows = []
    for (table, stage), by_method in groups.items():
        order = sorted(next(iter(by_method.values()))[0])  # the resamples never depend on the shards
        stats = {m: _aligned(ids, s, order, path) for m, (ids, s, path) in by_method.items()}
        runs = [(m, m) for m in by_method] + [tuple(c) for c in comparisons if c[0] in by_method and c[1] in by_method]
        for a, b in runs:
            for (metric, sa, statistic, scale), (_, sb, _, _) in zip(_metrics(table, stats[a], pairs),
                                                                    _metrics(table, stats[b], pairs)):
                kwargs = {"statistic": statistic} if statistic is not None else {}
                boot = paired_bootstrap_stats(sa, sb, resamples, seed, level, **kwargs)
                interval = boot.a if a == b else boot.difference
                rows.append({"table": table, "metric": metric, "stage": stage,
                             "method": a if a == b else f"{a} - {b}", "estimate": interval.estimate * scale,
                             "low": interval.low * scale, "high": interval.high * scale, "images": boot.images,
                             "resamples": resamples, "level": level, "seed": seed})
                if a != b:
                    log.info("%s %s %s: %s %.3f [%.3f, %.3f]", table, stage, metric, rows[-1]["method"],
                             rows[-1]["estimate"], rows[-1]["low"], rows[-1]["high"])
    table = pd.DataFrame(rows, columns=COLUMNS)
    with atomic_path(out_csv) as tmp:
        table.round({"estimate": 4, "low": 4, "high": 4}).to_csv(tmp, index=False)
    return table
