"""Paired bootstrap intervals on every table (wsss.stages.intervals), with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from wsss.metrics.bootstrap import f1_of_counts, paired_bootstrap_stats, ratio_of_counts
from wsss.metrics.per_image import PerImageConfusion
from wsss.stages.evaluation import save_counts
from wsss.stages.intervals import table_intervals

IDS = [f"i{k}" for k in range(6)]


def test_statistics_of_summed_counts():
    # precision 5/10, recall 10/20 -> F1 0.5; no predicted edge -> NaN
    assert f1_of_counts(np.array([[10, 5, 20, 10], [0, 0, 4, 0]], float)).tolist()[0] == 0.5
    assert np.isnan(f1_of_counts(np.array([0, 0, 4, 0], float)))
    assert ratio_of_counts(np.array([3, 6], float)) == 0.5 and np.isnan(ratio_of_counts(np.array([3, 0], float)))


def test_boundary_and_ratio_bootstrap_have_their_known_answers():
    rng = np.random.default_rng(0)
    counts = rng.integers(1, 50, (40, 4)).astype(float)
    counts[:, 1] = np.minimum(counts[:, 1], counts[:, 0])
    counts[:, 3] = np.minimum(counts[:, 3], counts[:, 2])
    same = paired_bootstrap_stats(counts, counts, 200, seed=1, statistic=f1_of_counts)
    assert same.difference.low == same.difference.high == same.difference.estimate == 0.0
    assert same.a.low <= same.a.estimate <= same.a.high and same.a.low < same.a.high
    # a method whose every image has twice the FP of the other at the same TP has twice its ratio,
    # in every resample: the ratio's difference interval is the estimate itself
    fp_tp = np.stack([rng.integers(1, 9, 40), rng.integers(10, 30, 40)], axis=1).astype(float)
    doubled = fp_tp * [2, 1]
    boot = paired_bootstrap_stats(doubled, fp_tp, 200, seed=2, statistic=ratio_of_counts)
    assert np.allclose(boot.samples_a, 2 * boot.samples_b)
    assert boot.a.estimate == pytest.approx(2 * boot.b.estimate)


def _miou_file(path, preds):
    gts = np.tile(np.array([[0, 1], [1, 2]]), (len(IDS), 1, 1))
    matrices = np.zeros((len(IDS), 3, 3), np.int64)
    for n, pred in enumerate(preds):
        np.add.at(matrices[n], (gts[n].ravel(), pred.ravel()), 1)
    PerImageConfusion.from_matrices(IDS, matrices).save(path)
    return matrices


def test_table_intervals_rows_and_paired_differences(tmp_path):
    perfect = [np.array([[0, 1], [1, 2]])] * len(IDS)
    worse = [np.array([[0, 1], [1, 1]]) if k % 2 else np.array([[0, 1], [1, 2]]) for k in range(len(IDS))]
    m_eps = _miou_file(tmp_path / "eps.npz", perfect)
    _miou_file(tmp_path / "cam.npz", worse)
    b = tmp_path / "b_eps.npz"
    save_counts(b, IDS[::-1], np.tile([10, 8, 10, 8], (len(IDS), 1)))  # another order: aligned by id
    save_counts(tmp_path / "b_cam.npz", IDS, np.tile([10, 8, 10, 8], (len(IDS), 1)))
    entries = [{"table": "miou", "stage": "pseudo", "method": m, "file": str(tmp_path / f"{m}.npz")}
               for m in ("eps", "cam")]
    entries += [{"table": "boundary", "stage": "pseudo", "method": m, "file": str(tmp_path / f"b_{m}.npz")}
                for m in ("eps", "cam")]
    out = table_intervals(entries, [["eps", "cam"]], [], tmp_path / "intervals.csv", resamples=300, seed=0)
    assert list(pd.read_csv(tmp_path / "intervals.csv").columns) == list(out.columns)
    rows = out.set_index(["table", "method"])
    assert rows.loc[("miou", "eps"), "estimate"] == 100.0
    assert rows.loc[("miou", "eps"), "low"] == rows.loc[("miou", "eps"), "high"] == 100.0
    assert np.trace(m_eps.sum(0)) == m_eps.sum()  # eps is perfect on every image
    gap = rows.loc[("miou", "eps - cam")]
    assert gap.estimate > 0 and gap.low <= gap.estimate <= gap.high and gap.low > 0  # every resample favours eps
    assert rows.loc[("boundary", "eps - cam"), ["estimate", "low", "high"]].tolist() == [0.0, 0.0, 0.0]
    assert rows.loc[("boundary", "eps"), "estimate"] == pytest.approx(80.0) and set(out.images) == {6}
