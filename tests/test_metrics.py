"""Unit tests of wsss.metrics: known answers on crafted masks and independent cross-checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from wsss.core.io import BadInputError, read_label_png, write_label_png
from wsss.metrics import (
    BoundaryCounts,
    ConfusionMatrix,
    ConfusionRatioCounts,
    Pair,
    boundary_counts,
    evaluate_boundaries,
    evaluate_confusion_ratio_dirs,
    evaluate_dirs,
    label_edges,
    resolve_pairs,
)


def _random_pair(rng, shape=(23, 31), c=5):
    gt = rng.integers(0, c, shape).astype(np.uint8)
    gt[rng.random(shape) < 0.1] = 255
    pred = rng.integers(0, c, shape).astype(np.uint8)
    return gt, pred


# -- confusion matrix ---------------------------------------------------------------------------
def test_confusion_matches_sklearn():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    cm, gts, preds = ConfusionMatrix(5), [], []
    for _ in range(4):
        gt, pred = _random_pair(rng)
        cm.update(gt, pred)
        gts.append(gt.ravel())
        preds.append(pred.ravel())
    gt, pred = np.concatenate(gts), np.concatenate(preds)
    keep = gt != 255
    ref = sk.confusion_matrix(gt[keep], pred[keep], labels=list(range(5)))
    np.testing.assert_array_equal(cm.matrix, ref)
    ref_iou = sk.jaccard_score(gt[keep], pred[keep], labels=list(range(5)), average=None)
    np.testing.assert_allclose(cm.iou(), ref_iou)
    np.testing.assert_allclose(cm.precision(), sk.precision_score(gt[keep], pred[keep], average=None))
    np.testing.assert_allclose(cm.recall(), sk.recall_score(gt[keep], pred[keep], average=None))
    assert cm.pixel_accuracy() == pytest.approx(sk.accuracy_score(gt[keep], pred[keep]))
    assert cm.miou() == pytest.approx(ref_iou.mean())


def test_confusion_hand_worked_and_ignore_semantics():
    gt = np.array([[0, 0, 1, 1], [0, 1, 1, 255]], dtype=np.uint8)
    pred = np.array([[0, 1, 1, 255], [0, 1, 0, 1]], dtype=np.uint8)
    cm = ConfusionMatrix(2).update(gt, pred)
    # gt 255 pixel dropped; pred 255 on a gt-1 pixel is a miss of class 1, a FP of nothing.
    np.testing.assert_array_equal(cm.matrix, [[2, 1], [1, 2]])
    np.testing.assert_array_equal(cm.pred_ignored, [0, 1])
    np.testing.assert_allclose(cm.iou(), [2 / 4, 2 / 5])
    np.testing.assert_allclose(cm.recall(), [2 / 3, 2 / 4])
    np.testing.assert_allclose(cm.precision(), [2 / 3, 2 / 3])
    assert cm.pixel_accuracy() == pytest.approx(4 / 7)


def test_confusion_absent_class_is_nan_and_excluded():
    cm = ConfusionMatrix(3).update(np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.uint8))
    assert cm.iou()[0] == 1 and math.isnan(cm.iou()[1])
    assert cm.miou() == 1.0


def test_confusion_merge_save_load(tmp_path):
    rng = np.random.default_rng(1)
    (g1, p1), (g2, p2) = _random_pair(rng), _random_pair(rng)
    whole = ConfusionMatrix(5).update(g1, p1).update(g2, p2)
    a, b = ConfusionMatrix(5).update(g1, p1), ConfusionMatrix(5).update(g2, p2)
    assert a + b == whole
    a.save(tmp_path / "a.npz")
    loaded = ConfusionMatrix.load(tmp_path / "a.npz")
    assert loaded.merge(b) == whole
    with pytest.raises(BadInputError, match="missing.npz"):
        ConfusionMatrix.load(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", counts=np.zeros(3))
    with pytest.raises(BadInputError, match=r"other\.npz: not a saved ConfusionMatrix \(.*\); delete it and re-run"):
        ConfusionMatrix.load(tmp_path / "other.npz")


def test_confusion_bad_input_names_the_file():
    with pytest.raises(BadInputError, match="img7"):
        ConfusionMatrix(3).update(np.zeros((2, 2), np.uint8), np.full((2, 2), 9, np.uint8), name="img7")
    with pytest.raises(BadInputError, match="shape"):
        ConfusionMatrix(3).update(np.zeros((2, 2), np.uint8), np.zeros((2, 3), np.uint8))


def test_evaluate_dirs_parallel_equals_serial(tmp_path):
    rng = np.random.default_rng(2)
    ids = [f"im{i:02d}" for i in range(12)]
    ref = ConfusionMatrix(5)
    for i in ids:
        gt, pred = _random_pair(rng)
        write_label_png(tmp_path / "gt" / f"{i}.png", gt)
        write_label_png(tmp_path / "pred" / f"{i}.png", pred)
        ref.update(gt, pred)
    serial = evaluate_dirs(tmp_path / "pred", tmp_path / "gt", ids, 5, processes=1)
    parallel = evaluate_dirs(tmp_path / "pred", tmp_path / "gt", ids, 5, processes=2)
    assert serial == ref and parallel == ref
    (tmp_path / "pred" / "im03.png").write_bytes(b"not a png")
    with pytest.raises(BadInputError, match="im03"):
        evaluate_dirs(tmp_path / "pred", tmp_path / "gt", ids, 5, processes=2)


# -- boundaries ---------------------------------------------------------------------------------
def _square(shape=(40, 40), top=10, left=12, size=15, cls=3):
    lab = np.zeros(shape, np.uint8)
    lab[top:top + size, left:left + size] = cls
    return lab


def test_identical_masks_f1_is_one():
    lab = _square()
    counts = boundary_counts(lab, label_edges(lab).astype(np.uint8), tolerance=0)
    assert counts.precision == counts.recall == counts.f1 == 1.0
    # 4-neighbour Laplacian: the square's own perimeter (4*15-4) + the outside ring without corners (4*15).
    assert counts.pred_edges == (4 * 15 - 4) + 4 * 15


def test_shift_against_tolerance_worked_by_hand():
    # A vertical label change at column 10: Laplacian edges on columns 9 and 10 (20 rows each).
    gt_lab = np.zeros((20, 20), np.uint8)
    gt_lab[:, 10:] = 1
    gt = label_edges(gt_lab)
    assert np.array_equal(np.flatnonzero(gt.any(axis=0)), [9, 10])
    d = 3
    pred = np.zeros_like(gt_lab)
    pred[:, 10 + d:] = 1  # edges on columns 12 and 13
    # column 12 is 2 px from column 10, column 13 is 3 px; symmetric for recall.
    expected = {0: 0.0, 1: 0.0, 2: 0.5, 3: 1.0, 4: 1.0}
    for t, pr in expected.items():
        c = boundary_counts(pred, gt, tolerance=t)
        assert c.precision == pytest.approx(pr) and c.recall == pytest.approx(pr), t
        assert c.pred_edges == c.gt_edges == 40


def test_shifted_square_needs_tolerance_of_the_shift():
    lab = _square()
    gt = label_edges(lab)
    for d in (1, 2, 3):
        shifted = np.roll(lab, d, axis=1)
        assert boundary_counts(shifted, gt, tolerance=d).f1 == 1.0
        assert boundary_counts(shifted, gt, tolerance=d - 1).f1 < 1.0


def test_ignore_region_in_prediction_is_its_own_region():
    lab = _square()
    with_hole = lab.copy()
    with_hole[15:20, 15:20] = 255  # an unlabelled patch inside the object adds edges
    gt = label_edges(lab)
    assert boundary_counts(with_hole, gt, 0).pred_edges > boundary_counts(lab, gt, 0).pred_edges
    assert boundary_counts(with_hole, gt, 0).recall == 1.0


def test_boundary_counts_sum_and_dirs(tmp_path):
    a = BoundaryCounts(10, 5, 8, 4, 1) + BoundaryCounts(10, 5, 2, 2, 1)
    assert (a.precision, a.recall, a.images) == (0.5, 0.6, 2)
    assert a.f1 == pytest.approx(2 * 0.5 * 0.6 / 1.1)
    ids = ["a", "b", "c"]
    for k, i in enumerate(ids):
        lab = _square(left=5 + k)
        write_label_png(tmp_path / "pred" / f"{i}.png", np.roll(lab, 1, axis=0))
        write_label_png(tmp_path / "bnd" / f"{i}.png", label_edges(lab).astype(np.uint8))
    serial = evaluate_boundaries(tmp_path / "pred", tmp_path / "bnd", ids, 1, processes=1)
    assert serial == evaluate_boundaries(tmp_path / "pred", tmp_path / "bnd", ids, 1, processes=2)
    assert serial.f1 == 1.0 and serial.images == 3
    with pytest.raises(BadInputError, match="0/1"):
        boundary_counts(lab, (label_edges(lab) * 255).astype(np.uint8), 1)


# -- confusion ratio ------------------------------------------------------------------------------
def test_confusion_ratio_worked_by_hand(tmp_path):
    # classes: 0 bg, 1 train; scene labels: 1 railroad, 2 water.
    gt = np.array([[1, 1, 1, 0, 0, 0],
                   [1, 1, 1, 0, 0, 255]], np.uint8)
    pred = np.array([[1, 1, 0, 1, 1, 0],
                     [1, 1, 1, 1, 0, 1]], np.uint8)
    ctx = np.array([[0, 0, 0, 1, 1, 1],
                    [0, 0, 0, 1, 2, 1]], np.uint8)
    # TP_train = 5; railroad pixels predicted train with gt != train: (0,3), (0,4), (1,3) = 3;
    # (1,5) is railroad and predicted train but gt 255: not counted. Water predicted train: 0.
    counts = ConfusionRatioCounts([Pair(1, 1), Pair(1, 2)])
    counts.update(gt, pred, ctx)
    np.testing.assert_array_equal(counts.tp, [5, 5])
    np.testing.assert_array_equal(counts.fp, [3, 0])
    np.testing.assert_allclose(counts.ratios(), [0.6, 0.0])
    for name, arr in (("gt", gt), ("pred", pred), ("ctx", ctx)):
        write_label_png(tmp_path / name / "x.png", arr)
    par, cm, _ = evaluate_confusion_ratio_dirs(tmp_path / "pred", tmp_path / "gt", tmp_path / "ctx", ["x"],
                                    [Pair(1, 1)], num_classes=2)
    assert par.ratios()[0] == pytest.approx(0.6)
    assert cm.iou()[1] == pytest.approx(5 / 9)  # TP 5, FP 3 (gt valid), FN 1


def test_resolve_pairs_names_unknown_classes():
    pairs = resolve_pairs([{"target": "boat", "coincident": "water"}], ["train", "boat"], ["railroad", "water"])
    assert pairs == [Pair(2, 2)]
    with pytest.raises(BadInputError, match="tram"):
        resolve_pairs([{"target": "tram", "coincident": "water"}], ["train", "boat"], ["railroad", "water"])
    with pytest.raises(BadInputError, match="sea"):
        resolve_pairs([{"target": "boat", "coincident": "sea"}], ["train", "boat"], ["railroad", "water"])


def test_sbd_style_one_pixel_boundaries_need_tolerance_one():
    # prepare_dataset's boundaries (SBD's definition) mark only the inside of a region; the
    # Laplacian marks both sides, so a perfect prediction scores P = 1 only from tolerance 1.
    from wsss.data.prepared import mask_boundary

    lab = _square()
    gt = mask_boundary(lab).astype(np.uint8)
    assert boundary_counts(lab, gt, tolerance=1).f1 == 1.0
    strict = boundary_counts(lab, gt, tolerance=0)
    assert strict.recall == 1.0 and strict.precision == pytest.approx(56 / 116)


# ---- closing gaps that `make mutation` showed (docs/experiments.md, "Mutation testing") -------------
def test_merge_adds_the_ignored_predictions():
    """A ground-truth pixel predicted 255 counts against recall; merged shards add those counts too."""
    gt, pred = np.array([[1, 2]], np.uint8), np.array([[255, 2]], np.uint8)
    one = ConfusionMatrix(3).update(gt, pred)
    assert one.pred_ignored.tolist() == [0, 1, 0]
    merged = ConfusionMatrix(3).update(gt, pred).merge(ConfusionMatrix(3).update(gt, pred))
    assert merged.pred_ignored.tolist() == [0, 2, 0] and merged.gt_total.tolist() == [0, 2, 2]
    assert (one + one) == merged and one.pred_ignored.tolist() == [0, 1, 0]  # + adds, in a new matrix


def test_centre_prior_worked_by_hand():
    """2 × 4 pixels, σ = 0.25 of each side: centres at y = ∓0.25, x = ∓0.375, ∓0.125 (pixel centres,
    (i + 0.5)/n − 0.5); corner d² = 0.0625 + 0.140625 = 0.203125, value exp(−0.203125 / (2·0.0625)) =
    exp(−1.625); inner d² = 0.0625 + 0.015625 → exp(−0.625)."""
    from wsss.metrics.saliency import centre_prior

    prior = centre_prior(2, 4, 0.25)
    assert prior.dtype == np.float32
    np.testing.assert_allclose(prior, [[np.exp(-1.625), np.exp(-0.625), np.exp(-0.625), np.exp(-1.625)]] * 2,
                               rtol=1e-6)


def test_saliency_quantises_to_255_levels():
    """pred × 255 rounded: 0.3012 → 77 (positive pixel), 0.3 → 76.5 → 76 (negative): the threshold 77
    separates them (F = 1 at 77/255). ×256 would give 77 to both, and no threshold would."""
    from wsss.metrics.saliency import SaliencyScores

    scores = SaliencyScores()
    scores.add(np.array([[0.3012, 0.3]], np.float32), np.array([[1.0, 0.0]], np.float32))
    result = scores.result()
    assert result["max_f"] == 1.0 and result["best_threshold"] == 77 / 255


# ---- reference tests: each count recomputed by an independent implementation (issue 32) ------------
def _edges_by_hand(label: np.ndarray) -> np.ndarray:
    """Pixels with a 4-neighbour of another label inside the image: on a two-label map the
    Laplacian's non-zero set (its neighbour differences all have one sign, none cancels)."""
    edges = np.zeros(label.shape, bool)
    rows, cols = label[1:, :] != label[:-1, :], label[:, 1:] != label[:, :-1]
    edges[1:, :] |= rows
    edges[:-1, :] |= rows
    edges[:, 1:] |= cols
    edges[:, :-1] |= cols
    return edges


def _boundary_reference(pred_label: np.ndarray, gt: np.ndarray, tolerance: float) -> tuple[int, int, int, int]:
    """(predicted edges, matched, gt boundary pixels, recalled) with scipy's exact Euclidean distance."""
    from scipy.ndimage import distance_transform_edt

    pred = _edges_by_hand(pred_label)
    to_gt, to_pred = distance_transform_edt(~gt), distance_transform_edt(~pred)
    return int(pred.sum()), int((to_gt[pred] <= tolerance).sum()), int(gt.sum()), int((to_pred[gt] <= tolerance).sum())


def _disc(centre=(15, 15), radius=8.5, shape=(32, 32)) -> np.ndarray:
    y, x = np.indices(shape)
    return (((y - centre[0]) ** 2 + (x - centre[1]) ** 2) <= radius ** 2).astype(np.uint8)


def test_boundary_tolerance_is_euclidean_on_diagonal_offsets():
    """A disc shifted by (1, 1): its edges lie diagonally off the reference's, √2 away where the
    chessboard distance says 1, so at 1 px tolerance only the Euclidean distance leaves them unmatched."""
    lab, shifted = _disc(), _disc(centre=(16, 16))
    gt = label_edges(lab)
    np.testing.assert_array_equal(gt, _edges_by_hand(lab))
    for t in (0, 1, 1.2, np.sqrt(2), 2, 2.5):
        assert boundary_counts(shifted, gt, t).as_tuple() == (*_boundary_reference(shifted, gt, t), 1), t
    # (3, 4) is 5 px away, where OpenCV's 3x3 chamfer mask says 5.06; √2 is 1.37 to that mask
    far = _disc(centre=(18, 19))
    for t in (1.39, 5):
        assert boundary_counts(far, gt, t).as_tuple() == (*_boundary_reference(far, gt, t), 1), t
    # the counts of this case, pinned so that the reference itself cannot drift
    at_one = boundary_counts(shifted, gt, 1)
    assert at_one.as_tuple() == (100, 90, 100, 90, 1)
    assert at_one.f1 == pytest.approx(0.9, abs=1e-12)


def test_boundary_without_edges_on_one_side():
    """No predicted edge: nothing to match, no ground-truth pixel recalled (its distance is infinite);
    no boundary pixel: no predicted edge is matched."""
    lab = _disc()
    gt = label_edges(lab)
    flat = boundary_counts(np.zeros_like(lab), gt, 5)
    assert flat.as_tuple() == (0, 0, int(gt.sum()), 0, 1)
    assert np.isnan(flat.precision) and flat.recall == 0.0 and np.isnan(flat.f1)
    bare = boundary_counts(lab, np.zeros_like(lab), 5)
    assert bare.as_tuple() == (int(_edges_by_hand(lab).sum()), 0, 0, 0, 1)
    assert bare.precision == 0.0 and np.isnan(bare.recall)
    from wsss.metrics.boundary import boundary_counts_per_image

    with pytest.raises(BadInputError, match=r"^no ids to evaluate in preds/; check the split's id list$"):
        boundary_counts_per_image("preds/", "bnd/", [], 1)


def test_confusion_ratio_where_ground_truth_target_and_context_disagree():
    """Classes 1 train, 2 boat, 3 ball; scene labels 1 railroad, 2 water. Pixel by pixel, for the
    pairs (train, railroad) and (boat, water):
      (0,0) gt boat,  pred train, railroad: FP of train (gt is another object, not background)
      (0,1) gt bg,    pred train, railroad: FP of train
      (0,2) gt train, pred train, railroad: TP of train, not an FP
      (0,3) gt boat,  pred train, water:    nothing for train (not its scene class)
      (1,0) gt 255,   pred train, railroad: nothing (ignored)
      (1,1) gt train, pred boat,  water:    FP of boat (gt train, predicted boat on water)
      (1,2) gt boat,  pred boat,  water:    TP of boat
      (1,3) gt ball,  pred boat,  railroad: nothing for boat (railroad is not water)
    train: FP 2, TP 1 -> 2.0; boat: FP 1, TP 1 -> 1.0."""
    gt = np.array([[2, 0, 1, 2], [255, 1, 2, 3]], np.uint8)
    pred = np.array([[1, 1, 1, 1], [1, 2, 2, 2]], np.uint8)
    ctx = np.array([[1, 1, 1, 2], [1, 2, 2, 1]], np.uint8)
    counts = ConfusionRatioCounts([Pair(1, 1), Pair(2, 2)])
    counts.update(gt, pred, ctx)
    assert counts.fp.tolist() == [2, 1] and counts.tp.tolist() == [1, 1]
    np.testing.assert_array_equal(counts.ratios(), [2.0, 1.0])
    assert np.isnan(ConfusionRatioCounts([Pair(3, 1)], fp=[4], tp=[0]).ratios()[0])  # no TP: no ratio


def test_per_image_counts_are_in_id_order_whatever_the_processes(tmp_path):
    """Each id's row holds that id's counts with a process pool too (its chunks are strided: more
    ids than chunks reorders them), so that the paired bootstrap pairs the right images."""
    from wsss.metrics.boundary import boundary_counts_per_image

    ids = [f"im{k:02d}" for k in range(11)]
    rng = np.random.default_rng(5)
    labs = [_disc(centre=(15 + k % 3, 15), radius=3 + k) for k in range(len(ids))]
    preds = [np.roll(lab, k % 4, axis=1) for k, lab in enumerate(labs)]
    for i, lab, pred in zip(ids, labs, preds):
        write_label_png(tmp_path / "gt" / f"{i}.png", lab)
        write_label_png(tmp_path / "pred" / f"{i}.png", pred)
        write_label_png(tmp_path / "bnd" / f"{i}.png", label_edges(lab).astype(np.uint8))
        write_label_png(tmp_path / "ctx" / f"{i}.png", rng.integers(0, 3, lab.shape).astype(np.uint8))
    serial = np.array([_boundary_reference(pred, label_edges(lab), 1) for lab, pred in zip(labs, preds)])
    assert len({tuple(r) for r in serial}) == len(ids)  # every image has counts of its own
    for processes in (1, 2):
        np.testing.assert_array_equal(boundary_counts_per_image(tmp_path / "pred", tmp_path / "bnd", ids, 1,
                                                                processes), serial)
    at_two = np.sum([_boundary_reference(pred, label_edges(lab), 2) for lab, pred in zip(labs, preds)], axis=0)
    assert evaluate_boundaries(tmp_path / "pred", tmp_path / "bnd", ids, 2).as_tuple() == (*at_two, len(ids))
    total, _, one = evaluate_confusion_ratio_dirs(tmp_path / "pred", tmp_path / "gt", tmp_path / "ctx", ids,
                                                  [Pair(1, 1), Pair(1, 2)], 2, processes=1)
    assert total.fp.tolist() == one[:, :, 0].sum(0).tolist() and total.tp.tolist() == one[:, :, 1].sum(0).tolist()
    two = evaluate_confusion_ratio_dirs(tmp_path / "pred", tmp_path / "gt", tmp_path / "ctx", ids,
                                        [Pair(1, 1), Pair(1, 2)], 2, processes=2)[2]
    np.testing.assert_array_equal(two, one)
    for n, i in enumerate(ids):
        alone = ConfusionRatioCounts([Pair(1, 1), Pair(1, 2)])
        alone.update(*(read_label_png(tmp_path / d / f"{i}.png") for d in ("gt", "pred", "ctx")))
        np.testing.assert_array_equal(one[n], np.stack([alone.fp, alone.tp], axis=-1))


def test_saliency_scores_against_a_threshold_loop():
    """MAE and max F (β² = 0.3) over three images against a loop over the 256 thresholds written here:
    ground truth salient from 0.5 (a pixel at exactly 0.5 is salient), predictions quantised to
    round(255 p) clipped to 0..255, precision and recall averaged over images per threshold (an image
    without salient pixels has recall 0, a threshold that selects nothing precision 0)."""
    from wsss.metrics.saliency import SaliencyScores

    rng = np.random.default_rng(6)
    preds = [rng.random((5, 7)).astype(np.float32) for _ in range(3)]
    preds[0][0, :2] = [1.003, -0.004]  # outside [0, 1]: clipped to the end levels
    gts = [(rng.random((5, 7)) < 0.4).astype(np.float32) for _ in range(2)] + [np.zeros((5, 7), np.float32)]
    gts[0][1, 1] = 0.5
    scores = SaliencyScores()
    for p, g in zip(preds, gts):
        scores.add(p, g)
    precision, recall = np.zeros(256), np.zeros(256)
    for p, g in zip(preds, gts):
        q = np.clip(np.round(p.astype(np.float64) * 255), 0, 255)
        positive = g >= 0.5
        for t in range(256):
            selected = q >= t
            tp = np.sum(selected & positive)
            precision[t] += tp / selected.sum() if selected.sum() else 0.0
            recall[t] += tp / positive.sum() if positive.sum() else 0.0
    precision, recall = precision / 3, recall / 3
    f = 1.3 * precision * recall / np.maximum(0.3 * precision + recall, 1e-12)
    mae = np.mean([np.abs(p.astype(np.float64) - (g >= 0.5)).mean() for p, g in zip(preds, gts)])
    result = scores.result()
    assert result == {"mae": pytest.approx(mae, rel=1e-6), "max_f": pytest.approx(f.max(), rel=1e-12),
                      "best_threshold": int(np.argmax(f)) / 255, "n_images": 3}
    with pytest.raises(ValueError, match="^no images were scored$"):
        SaliencyScores().result()
    with pytest.raises(ValueError, match=r"prediction \(2, 2\) and ground truth \(2, 3\) differ in size"):
        scores.add(np.zeros((2, 2)), np.zeros((2, 3)))


def test_confusion_ratio_inputs_and_messages(tmp_path):
    """Merged counts add up; each refusal names what is wrong and where."""
    from wsss.metrics import read_scene_classes

    a = ConfusionRatioCounts([Pair(1, 1)], fp=[2], tp=[3])
    fresh = ConfusionRatioCounts([Pair(1, 1)])
    assert a.fp.dtype == a.tp.dtype == fresh.fp.dtype == fresh.tp.dtype == np.int64
    a.merge(ConfusionRatioCounts([Pair(1, 1)], fp=[1], tp=[4]))
    assert (a.fp.tolist(), a.tp.tolist()) == ([3], [7])
    with pytest.raises(ValueError, match="^cannot merge confusion-ratio counts of different class pairs$"):
        a.merge(ConfusionRatioCounts([Pair(1, 2)]))
    with pytest.raises(BadInputError) as err:
        read_scene_classes(tmp_path / "classes.txt")
    assert str(err.value) == (f"{tmp_path / 'classes.txt'}: scene-class list is missing; re-run the rule that "
                              "prepares the scene labels (synthesize_dataset, or prepare_context for VOC)")
    with pytest.raises(BadInputError) as err:
        resolve_pairs([{"target": "boat", "coincident": "sea"}], ["train", "boat"], ["railroad", "water"])
    assert str(err.value) == ("evaluation.confusion_pairs: scene class 'sea' is not in the scene-label list "
                              "(2 names, e.g. ['railroad', 'water']); fix the config")
    with pytest.raises(BadInputError, match=r"^no ids to evaluate in p: none has a scene-label map in c$"):
        evaluate_confusion_ratio_dirs("p", "g", "c", [], [Pair(1, 1)], 2)
    gt = np.zeros((2, 3), np.uint8)
    for name, pred in (("short", np.zeros((2, 2), np.uint8)), ("wrong", np.full((2, 3), 9, np.uint8))):
        for d, arr in (("gt", gt), ("ctx", gt), ("pred", pred)):
            write_label_png(tmp_path / d / f"{name}.png", arr)
        with pytest.raises(BadInputError, match=rf"^{tmp_path / 'pred' / name}\.png: "):
            evaluate_confusion_ratio_dirs(tmp_path / "pred", tmp_path / "gt", tmp_path / "ctx", [name], [Pair(1, 1)], 2)


def test_confusion_matrix_summary_of_nothing_and_of_absent_classes(tmp_path):
    """No pixel: every mean is NaN; a class absent from both maps is None in the JSON lists (not NaN),
    left out of the means; the default class names are the indices; each refusal names its input."""
    empty = ConfusionMatrix(2).summary()
    assert [math.isnan(empty[k]) for k in ("miou", "precision", "recall", "pixel_accuracy")] == [True] * 4
    assert empty["classes"] == ["0", "1"] and empty["iou"] == [None, None] and empty["pixels"] == 0
    cm = ConfusionMatrix(3).update(np.array([[0, 2]], np.uint8), np.array([[0, 0]], np.uint8))
    summary = cm.summary(["bg", "a", "b"])
    assert summary["iou"] == [0.5, None, 0.0] and summary["miou"] == 0.25
    assert summary["class_recall"] == [1.0, None, 0.0]
    with pytest.raises(ValueError, match=r"^2 class names for 3 classes$"):
        cm.summary(["bg", "a"])
    with pytest.raises(BadInputError, match=r"^no ids to evaluate in p; check the split's id list$"):
        evaluate_dirs("p", "g", [], 3)
    write_label_png(tmp_path / "gt" / "x.png", np.zeros((2, 2), np.uint8))
    write_label_png(tmp_path / "pred" / "x.png", np.full((2, 2), 7, np.uint8))
    with pytest.raises(BadInputError, match=rf"^{tmp_path / 'pred' / 'x.png'}: prediction holds class 7"):
        evaluate_dirs(tmp_path / "pred", tmp_path / "gt", ["x"], 3)


def test_a_confusion_matrix_equals_only_a_confusion_matrix():
    from wsss.metrics.per_image import PerImageConfusion

    cm = ConfusionMatrix(2)
    assert cm == ConfusionMatrix(2) and cm != ConfusionMatrix(3) and cm != "a matrix" and cm != 2
    with pytest.raises(ValueError, match=r"^matrices of shape \(2, 2, 3\) for 2 ids; expected \(N, K, K\)$"):
        PerImageConfusion.from_matrices(["a", "b"], np.zeros((2, 2, 3), np.int64))


def test_an_empty_matrix_scores_nan_without_numpy_warnings():
    """No pixel scored: every mean is NaN, computed without dividing by zero (a warning in a log is noise)."""
    import math
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        summary = ConfusionMatrix(3).summary()
    assert all(math.isnan(summary[k]) for k in ("miou", "precision", "recall", "pixel_accuracy"))
    assert summary["pixels"] == 0 and summary["iou"] == [None, None, None]


def test_label_maps_of_any_integer_type_score_as_uint8_and_out_of_range_values_stop():
    gt = np.array([[0, 1], [2, 255]], np.uint8)
    pred = np.array([[0, 2], [2, 1]], np.uint8)
    expected = ConfusionMatrix(3).update(gt, pred)
    assert ConfusionMatrix(3).update(gt.astype(np.int64), pred.astype(np.int32)) == expected
    empty = np.zeros((0, 2), np.int64)
    assert ConfusionMatrix(3).update(empty, empty) == ConfusionMatrix(3)
    for first_bad in (5, 3):  # 3 of 3 classes: the first one past the list
        with pytest.raises(BadInputError) as err:
            ConfusionMatrix(3).update(np.array([[first_bad, 255, 1]], np.uint8), np.zeros((1, 3), np.uint8),
                                      name="g.png")
        assert str(err.value) == (f"g.png: ground truth holds class {first_bad} outside 0..2 (and not 255); check "
                                  "dataset.classes against the label PNGs")
    ok = np.array([[0, 0]], np.uint8)  # one map of a wider type is enough to be checked
    for bad_gt, bad_pred in ((np.array([[0, -1]]), ok), (ok, np.array([[256, 0]]))):
        with pytest.raises(BadInputError, match=r"^p.png: label values outside 0\.\.255; not a label map$"):
            ConfusionMatrix(3).update(bad_gt, bad_pred, name="p.png")
    with pytest.raises(BadInputError) as err:
        ConfusionMatrix(3).update(gt, pred[:1])
    assert str(err.value) == ("<array>: prediction shape (1, 2) != ground-truth shape (2, 2); predictions must be "
                              "at full image size (re-run the producing rule)")


def test_a_confusion_matrix_is_int64_of_its_shape_and_refuses_classes_past_its_last():
    cm = ConfusionMatrix(2, [[3.0, 1.0], [0.0, 2.0]], [1.0, 0.0])
    assert cm.matrix.dtype == cm.pred_ignored.dtype == np.int64 and cm.matrix.tolist() == [[3, 1], [0, 2]]
    for matrix, ignored in ((np.zeros((2, 3)), np.zeros(2)), (np.zeros((2, 2)), np.zeros(3))):
        with pytest.raises(ValueError) as err:
            ConfusionMatrix(2, matrix, ignored)
        assert str(err.value) == (f"confusion matrix shapes {matrix.shape}/{ignored.shape} do not match "
                                  "num_classes=2")
    with pytest.raises(BadInputError) as err:  # class 3 of 3 classes: the first one past the list
        ConfusionMatrix(3).update(np.array([[2, 1]], np.uint8), np.array([[3, 1]], np.uint8), name="p.png")
    assert str(err.value) == ("p.png: prediction holds class 3 outside 0..2 (and not 255); it was made for another "
                              "class list — re-run its rule")


def test_boundary_counts_refuse_a_negative_tolerance_and_a_map_that_is_not_0_1():
    from wsss.metrics.boundary import boundary_counts

    label = np.zeros((4, 4), np.uint8)
    with pytest.raises(ValueError) as err:
        boundary_counts(label, np.zeros((4, 4), np.uint8), -1)
    assert str(err.value) == "boundary tolerance must be >= 0, got -1"
    for top in (255, 2):
        with pytest.raises(BadInputError) as err:
            boundary_counts(label, np.full((4, 4), top, np.uint8), 1, name="b.png")
        assert str(err.value) == (f"b.png: boundary map holds values other than 0/1 (max {top}); the prepared "
                                  "boundaries must be uint8 0/1 — re-run prepare_dataset")
    with pytest.raises(BadInputError) as err:
        boundary_counts(label, np.zeros((3, 4), np.uint8), 1)
    assert str(err.value) == ("<array>: prediction shape (4, 4) != boundary map shape (3, 4); predictions must be "
                              "at full image size")


def test_boundary_evaluation_names_the_prediction_file_it_refuses(tmp_path):
    from wsss.core.io import write_label_png
    from wsss.metrics.boundary import evaluate_boundaries

    write_label_png(tmp_path / "pred" / "a.png", np.zeros((4, 4), np.uint8))
    write_label_png(tmp_path / "bnd" / "a.png", np.zeros((5, 4), np.uint8))
    with pytest.raises(BadInputError, match=rf"^{tmp_path / 'pred' / 'a.png'}: prediction shape \(4, 4\) != "):
        evaluate_boundaries(tmp_path / "pred", tmp_path / "bnd", ["a"], 1)


def test_class_counts_at_the_ends_of_8_bit_labels_and_merges_of_other_sizes():
    assert ConfusionMatrix(1).num_classes == 1 and ConfusionMatrix(255).matrix.shape == (255, 255)
    for bad in (0, 256):
        with pytest.raises(ValueError) as err:
            ConfusionMatrix(bad)
        assert str(err.value) == f"num_classes must be in 1..255, got {bad}"
    with pytest.raises(ValueError) as err:
        ConfusionMatrix(2).merge(ConfusionMatrix(3))
    assert str(err.value) == "cannot merge confusion matrices of 2 and 3 classes"


def test_confusion_ratio_counts_add_up_over_images():
    counts = ConfusionRatioCounts([Pair(1, 2)])
    gt, pred, context = np.array([[1, 0]], np.uint8), np.array([[1, 1]], np.uint8), np.array([[0, 2]], np.uint8)
    counts.update(gt, pred, context)
    counts.update(gt, pred, context)
    assert counts.tp.tolist() == [2] and counts.fp.tolist() == [2]
    with pytest.raises(BadInputError) as err:
        counts.update(gt, pred, context[:, :1])
    assert str(err.value) == ("<array>: shapes differ (gt (1, 2), prediction (1, 2), scene labels (1, 1)); all must "
                              "be at full image size")
