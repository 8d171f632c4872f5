"""Paired bootstrap over images (wsss.metrics.bootstrap) on crafted matrices with known answers, and
the per-image confusion matrices the evaluation keeps for it (wsss.metrics.per_image)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from eval_helpers import run_evaluation

from wsss.core.io import BadInputError, write_id_list, write_label_png
from wsss.metrics import ConfusionMatrix, evaluate_dirs
from wsss.metrics.bootstrap import (
    class_stats,
    f1_of_counts,
    miou_of_stats,
    paired_bootstrap,
    paired_bootstrap_files,
    paired_bootstrap_stats,
    ratio_of_counts,
    resample_counts,
)
from wsss.metrics.per_image import PerImageConfusion, evaluate_dirs_per_image
from wsss.stages.evaluation import EvalLabel


def random_matrices(rng, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-image gt x pred counts touching a few classes each, and pixels predicted 255."""
    m = np.zeros((n, k, k), np.int64)
    for i in range(n):
        for c in rng.choice(k, size=3, replace=False):
            m[i, c, c] = rng.integers(50, 500)
            m[i, c, rng.integers(k)] += rng.integers(0, 100)
    return m, rng.integers(0, 20, (n, k)) * (rng.random((n, k)) < 0.2)


def test_identical_methods_give_a_zero_width_interval_at_zero():
    m, ignored = random_matrices(np.random.default_rng(0), 60, 6)
    result = paired_bootstrap(m, m, ignored, ignored, resamples=1000, seed=3)
    assert (result.difference.estimate, result.difference.low, result.difference.high) == (0.0, 0.0, 0.0)
    assert result.a == result.b and result.a.low < result.a.estimate < result.a.high  # each mIoU does vary
    assert result.resamples == 1000 and result.images == 60 and result.level == 0.95


def test_a_constant_per_image_gap_is_that_gap():
    """Every image of a is a multiple of A and of b the same multiple of B: whatever the resample,
    a's mIoU is mIoU(A) and b's mIoU(B) (IoU is a ratio of counts), so the interval is the gap itself."""
    a_cm = np.array([[50, 5, 0], [4, 30, 6], [0, 2, 20]])
    b_cm = np.array([[40, 10, 5], [10, 20, 10], [3, 4, 15]])
    scale = np.random.default_rng(1).integers(1, 9, 40)[:, None, None]
    result = paired_bootstrap(scale * a_cm, scale * b_cm, resamples=500, seed=0)
    gap = ConfusionMatrix(3, a_cm).miou() - ConfusionMatrix(3, b_cm).miou()
    assert result.difference.estimate == pytest.approx(gap, abs=1e-15)
    assert result.difference.low == pytest.approx(gap, abs=1e-15) == result.difference.high
    assert result.a.low == result.a.high == pytest.approx(ConfusionMatrix(3, a_cm).miou(), abs=1e-15)


def test_two_images_by_hand():
    """N = 2: a resample holds image 1 twice, both once or image 2 twice (probabilities 1/4, 1/2, 1/4),
    so with 1,000 resamples the 2.5th/97.5th percentiles are the smallest/largest of three values.
    a: M1 = [[3,1],[0,4]]: IoU 3/(4+3-3) = 3/4 and 4/(4+5-4) = 4/5, mIoU 31/40;
       M2 = [[2,2],[1,1]]: IoU 2/5 and 1/4, mIoU 13/40;  M1 + M2 = [[5,3],[1,5]]: IoU 5/9, 5/9, mIoU 5/9.
    b: B1 = [[4,0],[0,4]]: mIoU 1;  B2 = [[4,0],[2,0]]: IoU 4/6 and 0/2, mIoU 1/3;
       B1 + B2 = [[8,0],[2,4]]: IoU 8/10 and 4/6, mIoU 11/15.
    a - b: 31/40 - 1 = -9/40, 5/9 - 11/15 = -8/45, 13/40 - 1/3 = -1/120."""
    a = np.array([[[3, 1], [0, 4]], [[2, 2], [1, 1]]])
    b = np.array([[[4, 0], [0, 4]], [[4, 0], [2, 0]]])
    r = paired_bootstrap(a, b, resamples=1000, seed=0)
    f = float
    assert (r.a.estimate, r.a.low, r.a.high) == pytest.approx((f(Fraction(5, 9)), f(Fraction(13, 40)),
                                                                f(Fraction(31, 40))), abs=1e-12)
    assert (r.b.estimate, r.b.low, r.b.high) == pytest.approx((f(Fraction(11, 15)), f(Fraction(1, 3)), 1.0),
                                                                abs=1e-12)
    assert (r.difference.estimate, r.difference.low, r.difference.high) == pytest.approx(
        (f(Fraction(-8, 45)), f(Fraction(-9, 40)), f(Fraction(-1, 120))), abs=1e-12)
    # ~1/4, 1/2, 1/4 of the resamples: the draw is uniform over images.
    share = np.bincount(np.searchsorted([f(Fraction(13, 40)), f(Fraction(5, 9))], r.samples_a), minlength=3) / 1000
    assert share == pytest.approx([0.25, 0.5, 0.25], abs=0.05)


def test_estimates_are_confusion_matrix_mious_and_resamples_are_sums_of_drawn_images():
    rng = np.random.default_rng(2)
    a, ig_a = random_matrices(rng, 30, 5)
    b, ig_b = random_matrices(rng, 30, 5)
    r = paired_bootstrap(a, b, ig_a, ig_b, resamples=200, seed=7)
    cm_a = ConfusionMatrix(5, a.sum(0), ig_a.sum(0))
    assert r.a.estimate == pytest.approx(cm_a.miou(), abs=1e-14)
    assert r.b.estimate == pytest.approx(ConfusionMatrix(5, b.sum(0), ig_b.sum(0)).miou(), abs=1e-14)
    counts = next(resample_counts(30, 200, seed=7)).astype(np.int64)
    assert counts.shape == (200, 30) and (counts.sum(1) == 30).all()
    for row in (0, 199):  # resample = the drawn images' matrices summed
        drawn = ConfusionMatrix(5, np.tensordot(counts[row], a, 1), counts[row] @ ig_a)
        assert r.samples_a[row] == pytest.approx(drawn.miou(), abs=1e-14)
    again = paired_bootstrap_stats(class_stats(a, ig_a), class_stats(b, ig_b), resamples=200, seed=7, chunk=7)
    assert np.array_equal(again.samples_a, r.samples_a) and again.difference == r.difference  # chunking
    other = paired_bootstrap(a, b, ig_a, ig_b, resamples=200, seed=8)
    assert not np.array_equal(other.samples_a, r.samples_a)
    low, high = np.percentile(r.samples_a - r.samples_b, [2.5, 97.5])
    assert (r.difference.low, r.difference.high) == (low, high)
    assert np.isnan(miou_of_stats(np.zeros((3, 4))))  # nothing at all: no mIoU
    with pytest.raises(ValueError, match="same images"):
        paired_bootstrap(a, b[:-1])


def write_folders(root, rng, ids, k=4, size=12):
    for i in ids:
        gt = rng.integers(0, k, (size, size)).astype(np.uint8)
        gt[0, :3] = 255
        pred = np.where(rng.random((size, size)) < 0.7, gt, rng.integers(0, k, (size, size))).astype(np.uint8)
        pred[pred == 255] = 0
        pred[1, :2] = 255  # unlabelled pixels of a pseudo-mask
        write_label_png(root / "gt" / f"{i}.png", gt)
        write_label_png(root / "pred" / f"{i}.png", pred)


def test_per_image_matrices_sum_to_the_folder_matrix_and_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    ids = [f"im{i}" for i in range(9)]
    write_folders(tmp_path, rng, ids)
    per_image = evaluate_dirs_per_image(tmp_path / "pred", tmp_path / "gt", ids, 4, processes=1)
    assert per_image.total() == evaluate_dirs(tmp_path / "pred", tmp_path / "gt", ids, 4)
    matrices, ignored = per_image.dense()
    assert matrices.dtype == ignored.dtype == np.int64  # pixel counts
    from wsss.core.io import read_label_png
    for n, i in enumerate(ids):
        alone = ConfusionMatrix(4).update(read_label_png(tmp_path / "gt" / f"{i}.png"),
                                          read_label_png(tmp_path / "pred" / f"{i}.png"))
        assert np.array_equal(matrices[n], alone.matrix) and np.array_equal(ignored[n], alone.pred_ignored)
    assert per_image.count.size == np.count_nonzero(matrices) and (per_image.count > 0).all()  # sparse
    assert np.array_equal(per_image.class_stats(), class_stats(matrices, ignored))
    parallel = evaluate_dirs_per_image(tmp_path / "pred", tmp_path / "gt", ids, 4, processes=2)
    assert all(np.array_equal(getattr(parallel, f), getattr(per_image, f)) for f in ("image", "cell", "count",
                                                                                     "ignored_class"))
    per_image.save(tmp_path / "per_image.npz")
    loaded = PerImageConfusion.load(tmp_path / "per_image.npz")
    assert loaded.ids == ids and loaded.num_classes == 4 and loaded.total() == per_image.total()
    assert np.array_equal(PerImageConfusion.from_matrices(ids, matrices, ignored).dense()[0], matrices)
    with pytest.raises(BadInputError, match="absent.npz"):
        PerImageConfusion.load(tmp_path / "absent.npz")


def test_per_image_refusals_name_the_file_and_the_fix(tmp_path):
    ids = ["im0", "im1"]
    write_folders(tmp_path, np.random.default_rng(1), ids)
    with pytest.raises(BadInputError, match=rf"^no ids to evaluate in {tmp_path / 'pred'}; check the split's id list$"):
        evaluate_dirs_per_image(tmp_path / "pred", tmp_path / "gt", [], 4)
    write_label_png(tmp_path / "pred" / "im1.png", np.zeros((5, 5), np.uint8))
    with pytest.raises(BadInputError, match=rf"^{tmp_path / 'pred' / 'im1.png'}: prediction shape \(5, 5\)"):
        evaluate_dirs_per_image(tmp_path / "pred", tmp_path / "gt", ids, 4)
    (tmp_path / "damaged.npz").write_bytes(b"not an archive")
    with pytest.raises(BadInputError, match=rf"^{tmp_path / 'damaged.npz'}: not saved per-image confusion matrices "
                                            r"\(.+\); delete it and re-run$"):
        PerImageConfusion.load(tmp_path / "damaged.npz")
    one = PerImageConfusion.from_matrices(["a"], np.eye(3, dtype=np.int64)[None])
    other = PerImageConfusion.from_matrices(["b"], np.eye(4, dtype=np.int64)[None])
    for parts in ([], [one, other]):
        with pytest.raises(ValueError, match="^concat needs at least one part, all with the same classes$"):
            PerImageConfusion.concat(parts)


def test_per_image_fields_are_int64_and_saved_under_the_name_given(tmp_path):
    """Counts and indices are int64 whatever they come as: a uint8 image index would wrap in `concat`."""
    small = PerImageConfusion(["a", "b"], 2, np.array([0, 1], np.uint8), np.array([0, 3], np.int32),
                              np.array([200, 7], np.uint8), np.array([1], np.uint8), np.array([0], np.int16),
                              np.array([3], np.uint8))
    assert all(getattr(small, f).dtype == np.int64 for f in ("image", "cell", "count", "ignored_image",
                                                             "ignored_class", "ignored_count"))
    many = PerImageConfusion.concat([small] * 200)
    assert many.image.max() == 399 and many.ignored_image.tolist()[-1] == 399
    # np.savez adds ".npz" to a name without it; the file must land under the name the rule declared
    small.save(tmp_path / "shard.bin")
    ConfusionMatrix(2, np.array([[5, 1], [0, 2]])).save(tmp_path / "matrix.bin")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["matrix.bin", "shard.bin"]
    assert PerImageConfusion.load(tmp_path / "shard.bin").count.tolist() == [200, 7]
    assert ConfusionMatrix.load(tmp_path / "matrix.bin") == ConfusionMatrix(2, np.array([[5, 1], [0, 2]]))


def test_evaluation_keeps_per_image_matrices_and_files_pair_by_id(tmp_path):
    rng = np.random.default_rng(1)
    ids = [f"im{i}" for i in range(8)]
    write_folders(tmp_path, rng, ids)
    write_id_list(tmp_path / "ids.txt", ids)
    (tmp_path / "classes.txt").write_text("a\nb\nc\n")
    plain = evaluate_dirs(tmp_path / "pred", tmp_path / "gt", ids, 4)
    one, three = (run_evaluation("miou", tmp_path / "pred", tmp_path / "ids.txt", tmp_path / f"s{n}",
                                 EvalLabel("cam", "pseudo"), n, gt_dir=tmp_path / "gt",
                                 classes_file=tmp_path / "classes.txt") for n in (1, 3))
    assert one == three and one["miou"] == plain.miou()  # the shards change nothing
    assert ConfusionMatrix.load(tmp_path / "s3/cam_pseudo_miou_matrix.npz") == plain
    (tmp_path / "per_image.npz").write_bytes((tmp_path / "s3/cam_pseudo_miou_per_image.npz").read_bytes())
    a = PerImageConfusion.load(tmp_path / "per_image.npz")
    shuffled = [7, 3, 0, 5, 1, 6, 2, 4]  # b lists the same images in another order
    matrices, ignored = a.dense()
    PerImageConfusion.from_matrices([a.ids[j] for j in shuffled], matrices[shuffled], ignored[shuffled]).save(
        tmp_path / "b.npz")
    same = paired_bootstrap_files(tmp_path / "per_image.npz", tmp_path / "b.npz", resamples=300)
    assert (same.difference.low, same.difference.high) == (0.0, 0.0)
    assert same.a.estimate == pytest.approx(plain.miou(), abs=1e-14)
    PerImageConfusion.from_matrices(a.ids[:-1] + ["other"], matrices, ignored).save(tmp_path / "c.npz")
    with pytest.raises(BadInputError, match="score different images"):
        paired_bootstrap_files(tmp_path / "per_image.npz", tmp_path / "c.npz")


def test_fast_enough_for_voc_val():
    """VOC val: 1,449 images, 21 classes, 1,000 resamples in well under a second of work."""
    import time

    a, ig = random_matrices(np.random.default_rng(4), 1449, 21)
    stats = class_stats(a, ig)
    start = time.perf_counter()
    result = paired_bootstrap_stats(stats, stats[::-1].copy(), resamples=1000, seed=0)
    assert time.perf_counter() - start < 10 and result.samples_a.shape == (1000,)


def test_the_wrappers_pass_every_setting_on_and_check_their_inputs(tmp_path):
    """paired_bootstrap (matrices) and paired_bootstrap_files (saved per-image files) are
    paired_bootstrap_stats of the class statistics, with the same resamples, seed and level, and
    their defaults are 1000 resamples, seed 0, 95 %."""
    rng = np.random.default_rng(9)
    (a, ig_a), (b, ig_b) = random_matrices(rng, 12, 4), random_matrices(rng, 12, 4)
    ref = paired_bootstrap_stats(class_stats(a, ig_a), class_stats(b, ig_b), 50, 3, 0.5)
    ids = [f"i{k}" for k in range(12)]
    PerImageConfusion.from_matrices(ids, a, ig_a).save(tmp_path / "a.npz")
    PerImageConfusion.from_matrices(ids, b, ig_b).save(tmp_path / "b.npz")
    default = paired_bootstrap_stats(class_stats(a, ig_a), class_stats(b, ig_b))
    for got, want in ((paired_bootstrap(a, b, ig_a, ig_b, resamples=50, seed=3, level=0.5), ref),
                      (paired_bootstrap_files(tmp_path / "a.npz", tmp_path / "b.npz", 50, 3, 0.5), ref),
                      (paired_bootstrap(a, b, ig_a, ig_b), default),
                      (paired_bootstrap_files(tmp_path / "a.npz", tmp_path / "b.npz"), default)):
        assert got.summary() == want.summary() and np.array_equal(got.samples_a, want.samples_a)
    assert (default.resamples, default.seed, default.level) == (1000, 0, 0.95)
    assert ref.summary() == {"a": {"estimate": ref.a.estimate, "low": ref.a.low, "high": ref.a.high},
                             "b": {"estimate": ref.b.estimate, "low": ref.b.low, "high": ref.b.high},
                             "difference": {"estimate": ref.difference.estimate, "low": ref.difference.low,
                                            "high": ref.difference.high},
                             "resamples": 50, "seed": 3, "level": 0.5, "images": 12}
    PerImageConfusion.from_matrices(ids, np.zeros((12, 5, 5), np.int64)).save(tmp_path / "five.npz")
    with pytest.raises(BadInputError, match=r"a\.npz has 4 classes, .*five\.npz 5; compare evaluations of the "
                                            r"same dataset$"):
        paired_bootstrap_files(tmp_path / "a.npz", tmp_path / "five.npz")
    PerImageConfusion.from_matrices([f"j{k}" for k in range(12)], b, ig_b).save(tmp_path / "j.npz")
    with pytest.raises(BadInputError, match=r"score different images \(e\.g\. \['i0', 'i1', 'i10'\]\); a paired "
                                            r"bootstrap needs both methods on the same ids: re-run their evaluations "
                                            r"on one split$"):
        paired_bootstrap_files(tmp_path / "a.npz", tmp_path / "j.npz")
    with pytest.raises(ValueError, match=r"must have shape \(N, K, K\), got \(2, 3, 4\)$"):
        class_stats(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match=r"must have shape \(N, K, K\), got \(3, 3\)$"):
        class_stats(np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"^pred_ignored of shape \(2, 4\) for matrices \(2, 3, 3\)$"):
        class_stats(np.zeros((2, 3, 3)), np.zeros((2, 4)))


def test_statistics_at_their_edges_one_pixel_one_class_nothing():
    """The summed-statistic functions on the counts where a bound matters: a class of one pixel, one
    present class, none present; one edge, no match; one true positive."""
    # (R=3, 3, K=3) tp / gt / pred: row 0 a one-pixel class beside an absent one; row 1 one present
    # class; row 2 nothing present at all
    stats = np.array([[[1, 2, 0], [1, 4, 0], [1, 2, 0]],
                      [[0, 3, 0], [0, 5, 0], [0, 4, 0]],
                      [[0, 0, 0], [0, 0, 0], [0, 0, 0]]], np.float64)
    got = miou_of_stats(stats)
    np.testing.assert_allclose(got[:2], [(1 / 1 + 2 / 4) / 2, 3 / 6])
    assert np.isnan(got[2])
    # counts (pred, pred_ok, gt, gt_ok): one edge matched; edges on both sides, none matched; no edges
    f1 = f1_of_counts(np.array([[1, 1, 1, 1], [2, 0, 3, 0], [0, 0, 0, 0], [2, 1, 0, 0], [0, 0, 2, 1]], np.float64))
    np.testing.assert_array_equal(f1[:2], [1.0, 0.0])
    assert np.isnan(f1[2:]).all()  # no edges on one side or both: no F1
    ratio = ratio_of_counts(np.array([[2, 1], [3, 0]], np.float64))
    assert ratio[0] == 2.0 and np.isnan(ratio[1])


def test_bootstrap_refuses_a_level_outside_0_1_and_no_resamples():
    stats = np.ones((3, 3, 2))
    for level, resamples in ((0.0, 10), (1.0, 10), (1.5, 10), (0.95, 0)):
        with pytest.raises(ValueError, match=rf"^level must be in \(0, 1\) and resamples >= 1; got {level}, "
                                             rf"{resamples}$"):
            paired_bootstrap_stats(stats, stats, resamples=resamples, level=level)
    one = paired_bootstrap_stats(stats, 2 * stats, resamples=1, level=0.5)
    assert one.resamples == 1 and one.a.estimate == one.b.estimate == 1.0 and one.difference.estimate == 0.0


def test_an_interval_without_any_value_is_its_estimate_and_nan():
    """A statistic that no resample defines (no true positive anywhere): the estimate, NaN bounds."""
    counts = np.array([[1.0, 0.0], [2.0, 0.0]])
    boot = paired_bootstrap_stats(counts, counts, resamples=20, statistic=ratio_of_counts)
    for interval in (boot.a, boot.b, boot.difference):
        assert np.isnan(interval.estimate) and np.isnan(interval.low) and np.isnan(interval.high)
    # a defined estimate keeps its value beside NaN bounds (no resample defines it: R > 1 rows here)
    boot = paired_bootstrap_stats(counts, counts, resamples=2,
                                  statistic=lambda s: np.full(len(s), 1.0 if len(s) == 1 else np.nan))
    for interval in (boot.a, boot.b):
        assert interval.estimate == 1.0 and np.isnan(interval.low) and np.isnan(interval.high)
