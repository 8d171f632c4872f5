"""Paired bootstrap intervals on every table (wsss.stages.intervals), with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from wsss.core.io import BadInputError
from wsss.metrics.bootstrap import f1_of_counts, paired_bootstrap_stats, ratio_of_counts
from wsss.metrics.per_image import PerImageConfusion
from wsss.stages.evaluation import load_counts, save_counts
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


# ---- reference tests: the intervals recomputed by a bootstrap written out here (issue 32) ----------
def _f1(c):
    precision, recall = c[1] / c[0], c[3] / c[2]
    return 2 * precision * recall / (precision + recall)


def _miou(matrix):
    tp = np.diag(matrix).astype(float)
    union = matrix.sum(0) + matrix.sum(1) - tp
    return np.mean(tp[union > 0] / union[union > 0])


def _reference(by_id_a, by_id_b, statistic, resamples, seed, scale, level=0.95):
    """Paired percentile bootstrap over the ids in sorted order (the resamples' documented order): each
    resample draws N ids with replacement (one rng.integers call, N per resample), the same for both."""
    ids = sorted(by_id_a)
    a, b = np.array([by_id_a[i] for i in ids]), np.array([by_id_b[i] for i in ids])
    draws = np.random.default_rng(seed).integers(0, len(ids), size=(resamples, len(ids)))
    sa = np.array([statistic(a[d].sum(0)) for d in draws])
    sb = np.array([statistic(b[d].sum(0)) for d in draws])
    est_a, est_b = statistic(a.sum(0)), statistic(b.sum(0))
    rows = {}
    for name, est, values in (("a", est_a, sa), ("b", est_b, sb), ("a - b", est_a - est_b, sa - sb)):
        low, high = np.percentile(values, [50 * (1 - level), 100 - 50 * (1 - level)])
        rows[name] = [scale * est, scale * low, scale * high]
    return rows


def _check(out, table, a, b, reference):
    rows = out[out.table == table].set_index("method")
    for method, key in ((a, "a"), (b, "b"), (f"{a} - {b}", "a - b")):
        assert rows.loc[method, ["estimate", "low", "high"]].tolist() == pytest.approx(reference[key], rel=1e-12,
                                                                                         abs=1e-12), method


def test_paired_intervals_align_the_files_by_id(tmp_path, caplog):
    """Two methods whose per-image files list the same ids in different orders, every id with rows
    of its own: the intervals are the reference bootstrap's over the ids paired by name, and do not
    change when a file lists its ids in another order."""
    rng = np.random.default_rng(3)
    ids = [f"im{k}" for k in range(7)]
    edge = {m: {i: np.array([(p := rng.integers(20, 60)), rng.integers(5, p), (g := rng.integers(20, 60)),
                             rng.integers(5, g)]) for i in ids} for m in ("eps", "cam")}
    ratio = {m: {i: rng.integers(1, 30, (2, 2)) for i in ids} for m in ("eps", "cam")}
    matrices = {m: {i: rng.integers(0, 9, (3, 3)) * (1 + 5 * np.eye(3, dtype=int)) for i in ids}
                for m in ("eps", "cam")}
    orders = {"eps": ids[::-1], "cam": [ids[k] for k in (3, 0, 6, 2, 5, 1, 4)]}

    def write(orders, folder):
        entries = []
        for m, order in orders.items():
            save_counts(folder / f"b_{m}.npz", order, np.stack([edge[m][i] for i in order]))
            save_counts(folder / f"c_{m}.npz", order, np.stack([ratio[m][i] for i in order]))
            per_image = PerImageConfusion.from_matrices(order, np.stack([matrices[m][i] for i in order]))
            per_image.save(folder / f"m_{m}.npz")
            entries += [{"table": t, "stage": "pseudo", "method": m, "file": str(folder / f"{p}_{m}.npz")}
                        for t, p in (("boundary", "b"), ("confusion_ratio", "c"), ("miou", "m"))]
        return entries

    pairs = [{"target": "train", "coincident": "railroad"}, {"target": "boat", "coincident": "water"}]
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    import logging

    with caplog.at_level(logging.INFO, logger="wsss.stages.intervals"):
        out = table_intervals(write(orders, tmp_path / "one"), [["eps", "cam"], ["eps", "gt"], ["gt", "cam"]], pairs,
                              tmp_path / "one.csv", resamples=150, seed=4, level=0.9)
    _check(out, "boundary", "eps", "cam", _reference(edge["eps"], edge["cam"], _f1, 150, 4, 100.0, 0.9))
    _check(out, "miou", "eps", "cam", _reference(matrices["eps"], matrices["cam"], _miou, 150, 4, 100.0, 0.9))
    assert len(out) == 4 * 3 and set(out.stage) == {"pseudo"} and set(out.images) == {7}  # gt has no file: skipped
    assert (set(out.resamples), set(out.level), set(out.seed)) == ({150}, {0.9}, {4})
    f1 = out[(out.table == "boundary") & (out.method == "eps - cam")].iloc[0]
    assert (f"boundary pseudo F1: eps - cam {f1.estimate:.3f} [{f1.low:.3f}, {f1.high:.3f}]" in caplog.messages
            and len(caplog.messages) == 4)  # one line per comparison
    for j, p in enumerate(pairs):
        part = out[out.metric == f"confusion_{p['coincident']}_{p['target']}"]
        _check(part, "confusion_ratio", "eps", "cam",
               _reference({i: r[j] for i, r in ratio["eps"].items()}, {i: r[j] for i, r in ratio["cam"].items()},
                          lambda c: c[0] / c[1], 150, 4, 1.0, 0.9))
    assert sorted(set(zip(out.table, out.metric))) == [
        ("boundary", "F1"), ("confusion_ratio", "confusion_railroad_train"),
        ("confusion_ratio", "confusion_water_boat"), ("miou", "mIoU")]
    written = pd.read_csv(tmp_path / "one.csv", keep_default_na=False)  # the CSV: 4 decimals, no index
    pd.testing.assert_frame_equal(written, out.round({"estimate": 4, "low": 4, "high": 4}), check_dtype=False)
    assert (out.estimate.round(4) != out.estimate).any()  # the rounding shows
    empty = table_intervals([], [], pairs, tmp_path / "empty.csv")
    assert list(empty.columns) == list(pd.read_csv(tmp_path / "empty.csv").columns) == [
        "table", "metric", "stage", "method", "estimate", "low", "high", "images", "resamples", "level", "seed"]
    swapped = table_intervals(write({"eps": orders["cam"], "cam": ids}, tmp_path / "two"), [["eps", "cam"]], pairs,
                              tmp_path / "two.csv", resamples=150, seed=4, level=0.9)
    pd.testing.assert_frame_equal(swapped, out)
    boundary_files = write(orders, tmp_path / "two")[::3]
    default = table_intervals(boundary_files, [], pairs, tmp_path / "d.csv")
    assert default.resamples.tolist() == [1000, 1000] and default.seed.tolist() == [0, 0]
    ref = _reference(edge["eps"], edge["cam"], _f1, 1000, 0, 100.0)
    assert default.loc[0, ["estimate", "low", "high"]].tolist() == pytest.approx(ref["a"], rel=1e-12)
    save_counts(tmp_path / "two" / "b_cam.npz", ids[:-1] + ["other"], np.stack([edge["cam"][i] for i in ids]))
    with pytest.raises(BadInputError) as err:
        table_intervals(write({"eps": ids}, tmp_path / "two")[:1] + [
            {"table": "boundary", "stage": "pseudo", "method": "cam", "file": str(tmp_path / "two" / "b_cam.npz")}],
            [], pairs, tmp_path / "three.csv", resamples=10)
    assert str(err.value) == (f"{tmp_path / 'two' / 'b_cam.npz'}: scores other images than the other methods of its "
                              "stage; rerun the evaluation rules on one split")


def test_intervals_from_several_evaluation_shards_are_those_from_one(tmp_path):
    """The per-image files the evaluation writes from 3 shards (their ids in shard order) give the
    intervals of 1 shard, and those are the reference bootstrap's over each image's own counts."""
    from eval_helpers import run_evaluation

    from wsss.core.io import read_label_png, write_id_list, write_label_png
    from wsss.metrics.boundary import label_edges
    from wsss.stages.evaluation import EvalLabel

    rng = np.random.default_rng(8)
    ids = [f"im{k}" for k in range(8)]
    write_id_list(tmp_path / "ids.txt", ids)
    (tmp_path / "classes.txt").write_text("train\nboat\n")
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "classes.txt").write_text("railroad\nwater\n")
    for i in ids:
        gt = np.zeros((12, 12), np.uint8)
        gt[2:8, 2:9] = rng.integers(1, 3)
        write_label_png(tmp_path / "gt" / f"{i}.png", gt)
        write_label_png(tmp_path / "bnd" / f"{i}.png", label_edges(gt).astype(np.uint8))
        write_label_png(tmp_path / "ctx" / f"{i}.png", rng.integers(0, 3, gt.shape).astype(np.uint8))
        for m in ("eps", "cam"):
            noise = rng.random(gt.shape) < (0.1 if m == "eps" else 0.3)
            pred = np.where(noise, rng.integers(0, 3, gt.shape), gt).astype(np.uint8)
            write_label_png(tmp_path / m / f"{i}.png", pred)
    pairs = [{"target": "train", "coincident": "railroad"}]
    tables = []
    for shards in (1, 3):
        work = tmp_path / f"s{shards}"
        entries = []
        for m in ("eps", "cam"):
            for kind in ("miou", "boundary", "confusion_ratio"):
                run_evaluation(kind, tmp_path / m, tmp_path / "ids.txt", work, EvalLabel(m, "pseudo"), shards,
                               gt_dir=tmp_path / "gt", classes_file=tmp_path / "classes.txt",
                               boundary_dir=tmp_path / "bnd", context_dir=tmp_path / "ctx", pairs=pairs, tolerance=1.0)
                entries.append({"table": kind, "stage": "pseudo", "method": m,
                                "file": str(work / f"{m}_pseudo_{kind}_per_image.npz")})
        tables.append(table_intervals(entries, [["eps", "cam"]], pairs, work / "intervals.csv", resamples=120, seed=5))
    assert load_counts(tmp_path / "s3/eps_pseudo_boundary_per_image.npz")[0] != sorted(ids)  # shard order
    pd.testing.assert_frame_equal(tables[1], tables[0])
    # each image's matrix from its own PNGs: the reference bootstrap of the mIoU rows
    by_id = {m: {} for m in ("eps", "cam")}
    for m in by_id:
        for i in ids:
            g, p = read_label_png(tmp_path / "gt" / f"{i}.png"), read_label_png(tmp_path / m / f"{i}.png")
            by_id[m][i] = np.array([[np.sum((g == r) & (p == c)) for c in range(3)] for r in range(3)])
    _check(tables[1], "miou", "eps", "cam", _reference(by_id["eps"], by_id["cam"], _miou, 120, 5, 100.0))
