"""The evaluation stage end to end on crafted folders: stage entry points → tables → figures."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
from eval_helpers import run_evaluation

from wsss.core.io import BadInputError, write_gray_png, write_id_list, write_image, write_label_png
from wsss.metrics.boundary import label_edges
from wsss.stages.evaluation import EvalLabel, load_counts
from wsss.stages.figures import figure_losses, figure_qualitative, figure_table, pick_ids
from wsss.stages.tables import table_boundary, table_confusion_ratio, table_miou

IDS = ["a", "b", "c"]


@pytest.fixture()
def data(tmp_path):
    """A 2-class dataset (train=1, boat=2) with scene labels, and two 'methods' of predictions."""
    (tmp_path / "classes.txt").write_text("train\nboat\n")
    write_id_list(tmp_path / "ids.txt", IDS)
    for k, i in enumerate(IDS):
        gt = np.zeros((24, 24), np.uint8)
        gt[4:12, 4 + k:14 + k] = 1
        gt[16:20, 2:10] = 2
        ctx = np.zeros_like(gt)
        ctx[12:15, 4:16] = 1  # railroad under the train
        ctx[20:23, 2:10] = 2  # water under the boat
        good = gt.copy()
        leaky = gt.copy()
        leaky[12:14, 4:16] = 1  # the train spreads onto its railroad
        write_label_png(tmp_path / "gt" / f"{i}.png", gt)
        write_label_png(tmp_path / "ctx" / f"{i}.png", ctx)
        write_label_png(tmp_path / "bnd" / f"{i}.png", label_edges(gt).astype(np.uint8))
        write_label_png(tmp_path / "good" / f"{i}.png", good)
        write_label_png(tmp_path / "leaky" / f"{i}.png", leaky)
        write_image(tmp_path / "img" / f"{i}.jpg", np.full((24, 24, 3), 90 + 40 * k, np.uint8))
        write_gray_png(tmp_path / "sal" / f"{i}.png", (gt > 0).astype(np.float32))
    (tmp_path / "ctx" / "classes.txt").write_text("railroad\nwater\n")
    return tmp_path


def _run_all(d):
    out = {"miou": [], "boundary": [], "confusion": []}
    pairs = [{"target": "train", "coincident": "railroad"}, {"target": "boat", "coincident": "water"}]
    for method in ("good", "leaky"):
        label = EvalLabel(method, "pseudo")
        # two shards for one method, one for the other: the same numbers either way (tested below)
        shards = 2 if method == "good" else 1
        common = dict(gt_dir=d / "gt", classes_file=d / "classes.txt", boundary_dir=d / "bnd", context_dir=d / "ctx",
                      pairs=pairs, tolerance=0)
        for kind, key in (("miou", "miou"), ("boundary", "boundary"), ("confusion_ratio", "confusion")):
            run_evaluation(kind, d / method, d / "ids.txt", d, label, shards, **common)
            out[key].append(d / f"{method}_pseudo_{kind}.json")
    return out


def test_stage_results_and_tables(data):
    res = _run_all(data)
    good = json.loads((data / "good_pseudo_miou.json").read_text())
    assert good["miou"] == 1.0 and good["images"] == 3 and good["classes"] == ["background", "train", "boat"]
    t = table_miou(res["miou"][::-1], data / "miou.csv", data / "per_class.csv")
    assert list(t["method"]) == ["good", "leaky"]  # ordered, whatever the input order
    assert t.loc[0, "mIoU"] == 100.0 and t.loc[1, "mIoU"] < 100.0
    per_class = pd.read_csv(data / "per_class.csv").set_index("method")
    # good is the ground truth; leaky adds the 2 x 12 railroad pixels under the train (rows 12-13)
    # on each image. background: 576 - 80 train - 32 boat = 464 pixels per image, 24 of them lost to
    # the train: IoU (3 x 440) / (3 x 464); train: 3 x 80 true, 3 x 104 predicted: IoU 240 / 312.
    assert per_class.loc["good", ["background", "train", "boat", "mIoU"]].tolist() == [100.0] * 4
    expected = [100 * 440 / 464, 100 * 240 / 312, 100.0]
    assert per_class.loc["leaky", ["background", "train", "boat"]].tolist() == pytest.approx(expected, abs=0.005)
    assert per_class.loc["leaky", "mIoU"] == pytest.approx(sum(expected) / 3, abs=0.005)
    b = table_boundary(res["boundary"], data / "boundary.csv")
    assert b.loc[0, "F1"] == 100.0 and b.loc[1, "F1"] < 100.0
    c = table_confusion_ratio(res["confusion"], data / "confusion.csv")
    good_rail = c[(c.method == "good") & (c.target == "train")].iloc[0]
    leaky_rail = c[(c.method == "leaky") & (c.target == "train")].iloc[0]
    assert good_rail.confusion_ratio == 0.0
    # 2 rows x 12 columns of railroad predicted as train per image, over 8x10 true train pixels.
    assert leaky_rail.confusion_ratio == pytest.approx(24 / 80, abs=1e-3)
    assert leaky_rail.target_IoU == pytest.approx(100 * 80 / 104, abs=0.01)
    assert pd.read_csv(data / "confusion.csv").shape[0] == 4


def test_missing_prediction_names_the_first_missing_id(data):
    with pytest.raises(BadInputError, match=rf"^{data / 'none.txt'}: class list is missing; re-run prepare_dataset$"):
        run_evaluation("miou", data / "good", data / "ids.txt", data, EvalLabel("good", "pseudo"),
                       gt_dir=data / "gt", classes_file=data / "none.txt")
    (data / "good" / "b.png").unlink()
    with pytest.raises(BadInputError, match=rf"^{data / 'good'}: 1 of 3 predictions missing \(first: b.png\); the "
                                            r"producing rule wrote a different id list — re-run it$"):
        run_evaluation("miou", data / "good", data / "ids.txt", data, EvalLabel("good", "pseudo"),
                       gt_dir=data / "gt", classes_file=data / "classes.txt")


def test_boundary_skips_ids_without_boundary_map(data, caplog):
    caplog.set_level(logging.WARNING, logger="wsss.stages.evaluation")
    r = run_evaluation("boundary", data / "good", data / "ids.txt", data / "all", EvalLabel("good", "pseudo"),
                       shards=2, boundary_dir=data / "bnd", tolerance=0)
    assert r["skipped"] == 0 and not job_log(caplog)  # nothing skipped, nothing said
    (data / "bnd" / "c.png").unlink()
    r = run_evaluation("boundary", data / "good", data / "ids.txt", data, EvalLabel("good", "pseudo"), shards=2,
                       boundary_dir=data / "bnd", tolerance=0)
    assert r["images"] == 2 and r["skipped"] == 1
    assert job_log(caplog) == [f"1 of 3 ids have no boundary map in {data / 'bnd'}; skipped"]


def test_figures_render(data):
    res = _run_all(data)
    table_miou(res["miou"], data / "miou.csv", data / "per_class.csv")
    table_boundary(res["boundary"], data / "boundary.csv")
    table_confusion_ratio(res["confusion"], data / "confusion_ratio.csv")
    figs = data / "figs"
    for kind, name in (("miou", "m"), ("boundary", "b"), ("confusion_ratio", "c")):
        figure_table(kind, data / f"{kind}.csv", figs / f"{name}.png")
    ids = pick_ids(data / "ids.txt", [], 2)
    assert ids == ["a", "b"]
    with pytest.raises(BadInputError, match="zzz"):
        pick_ids(data / "ids.txt", ["zzz"], 2)
    figure_qualitative(ids, data / "img", data / "gt", data / "sal",
                       [("good", data / "good"), ("leaky", data / "leaky")], figs / "q.png", title="test")
    pd.DataFrame({"step": range(1, 21), "lr": 0.1, "loss": np.linspace(2, 1, 20), "loss_cls": 0.5}).to_csv(
        data / "loss.csv", index=False)
    figure_losses([data / "loss.csv"], ["eps"], figs / "l.png", smooth=3)
    for name in ("m", "b", "c", "q", "l"):
        png = (figs / f"{name}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000


def test_prepare_pascal_context(tmp_path):
    import io
    import tarfile

    from PIL import Image

    from wsss.data.pascal_context import download_context, parse_label_names, prepare_context

    assert parse_label_names("1: aeroplane\n2: bag\n\n4: track\n") == ["aeroplane", "bag", "unnamed_3", "track"]
    assert parse_label_names("0 background\n1 water\n") == ["water"]
    (tmp_path / "labels.txt").write_text("1: water\n2: track\n")
    archive = tmp_path / "ctx.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, value in (("59_context_labels/2008_000002.png", 2), ("59_context_labels/readme.png", 1)):
            buf = io.BytesIO()
            Image.fromarray(np.full((3, 4), value, np.uint8), mode="L").save(buf, format="PNG")
            info = tarfile.TarInfo(name)
            info.size = buf.tell()
            buf.seek(0)
            tar.addfile(info, buf)
    assert prepare_context(archive, tmp_path / "labels.txt", tmp_path / "context") == 1
    assert (tmp_path / "context" / "classes.txt").read_text() == "water\ntrack\n"
    from wsss.core.io import read_label_png

    assert read_label_png(tmp_path / "context" / "2008_000002.png").max() == 2
    (tmp_path / "labels.txt").write_text("1: water\n")
    with pytest.raises(BadInputError, match="names only 1"):
        prepare_context(archive, tmp_path / "labels.txt", tmp_path / "context2")
    assert not (tmp_path / "context2").exists()
    with pytest.raises(BadInputError, match="context_md5"):
        download_context("http://127.0.0.1:9/x.tgz", None, "http://127.0.0.1:9/l.txt", None, tmp_path / "a",
                         tmp_path / "b")


def test_bench_evaluation_rows():
    from wsss_dev.bench.evaluation import bench_evaluation

    rows = bench_evaluation(images=6, processes=(1, 2), repeats=1)
    assert [r["processes"] for r in rows] == [1, 2]
    assert all(r["identical_output"] and r["images"] == 6 and r["seconds"] > 0 for r in rows)
    assert rows[0]["speedup"] == 1.0


def test_shards_without_ids_add_nothing(data):
    """More shards than images: the empty shards are valid and the sums are the single shard's."""
    label = EvalLabel("good", "pseudo")
    common = dict(gt_dir=data / "gt", classes_file=data / "classes.txt", boundary_dir=data / "bnd",
                  context_dir=data / "ctx", pairs=[{"target": "train", "coincident": "railroad"}], tolerance=0)
    for kind in ("miou", "boundary", "confusion_ratio"):
        one = run_evaluation(kind, data / "good", data / "ids.txt", data / "one", label, 1, **common)
        five = run_evaluation(kind, data / "good", data / "ids.txt", data / "five", label, 5, **common)
        assert one == five, kind
    # an empty shard holds no row, and the counts stay integers beside the others'
    for kind, row in (("boundary", (4,)), ("confusion_ratio", (1, 2))):
        ids, counts = load_counts(data / "five" / f"good_pseudo_{kind}_4.npz")
        assert ids == [] and counts.shape == (0, *row) and counts.dtype == np.int64, kind
        ids, counts = load_counts(data / "five" / f"good_pseudo_{kind}_per_image.npz")
        assert len(ids) == 3 and counts.dtype == np.int64, kind


# ---- reference tests: the numbers of the tables, recomputed pixel by pixel (issue 32) --------------
REF_IDS = ["r0", "r1", "r2", "r3", "r4"]


def job_log(caplog) -> list[str]:
    """The lines the evaluation jobs wrote to their log (what a user reads beside the JSON)."""
    return [r.getMessage() for r in caplog.records if r.name == "wsss.stages.evaluation"]


@pytest.fixture()
def log_info(caplog):
    caplog.set_level(logging.INFO, logger="wsss.stages.evaluation")
    return caplog


@pytest.fixture()
def noisy(tmp_path):
    """Classes 1 train, 2 boat, 3 ball; ground truth with a 255 band, predictions with unlabelled
    (255) pixels, scene labels 0..2 (railroad, water), SBD-style boundary maps: every pixel kind."""
    rng = np.random.default_rng(11)
    (tmp_path / "classes.txt").write_text("train\nboat\nball\n")
    write_id_list(tmp_path / "ids.txt", REF_IDS)
    arrays = {}
    for i in REF_IDS:
        gt = np.zeros((16, 16), np.uint8)
        gt[2:9, 3:12] = rng.integers(1, 4)
        gt[10:14, 1:7] = rng.integers(1, 4)
        gt[9, :] = 255
        pred = np.where(rng.random(gt.shape) < 0.75, gt, rng.integers(0, 4, gt.shape)).astype(np.uint8)
        pred[rng.random(gt.shape) < 0.05] = 255
        ctx = rng.integers(0, 3, gt.shape).astype(np.uint8)
        bnd = label_edges(np.where(gt == 255, 0, gt)) & (rng.random(gt.shape) < 0.8)
        for name, arr in (("gt", gt), ("pred", pred), ("ctx", ctx), ("bnd", bnd.astype(np.uint8))):
            write_label_png(tmp_path / name / f"{i}.png", arr)
        arrays[i] = gt, pred, ctx, bnd
    (tmp_path / "ctx" / "classes.txt").write_text("railroad\nwater\n")
    return tmp_path, arrays


def test_per_class_iou_table_is_the_pixel_count_formula(noisy, log_info):
    """miou_per_class.csv and miou.csv against IoU_c = |gt = c and pred = c| / |gt = c or pred = c|
    over the pixels whose ground truth is not 255 (a pixel predicted 255 is a miss of its class),
    summed over images, evaluated in 2 shards."""
    d, arrays = noisy
    label = EvalLabel("cam", "pseudo")
    result = run_evaluation("miou", d / "pred", d / "ids.txt", d, label, 2, gt_dir=d / "gt",
                            classes_file=d / "classes.txt")
    gt = np.stack([a[0] for a in arrays.values()])
    pred = np.stack([a[1] for a in arrays.values()])
    valid = gt != 255
    inter = np.array([np.sum(valid & (gt == c) & (pred == c)) for c in range(4)])
    union = np.array([np.sum(valid & ((gt == c) | (pred == c))) for c in range(4)])
    predicted = np.array([np.sum(valid & (pred == c)) for c in range(4)])
    labelled = np.array([np.sum(valid & (gt == c)) for c in range(4)])
    np.testing.assert_allclose(result["iou"], inter / union, rtol=1e-15)
    np.testing.assert_allclose(result["class_precision"], inter / predicted, rtol=1e-15)
    np.testing.assert_allclose(result["class_recall"], inter / labelled, rtol=1e-15)
    assert result["pixel_accuracy"] == pytest.approx(inter.sum() / valid.sum(), rel=1e-15)
    assert result["pixels"] == valid.sum() and result["images"] == len(REF_IDS)
    assert f"pseudo/cam: 5 images from 2 shard(s): mIoU {np.mean(inter / union):.4f}" in job_log(log_info)
    table = table_miou([d / "cam_pseudo_miou.json"], d / "miou.csv", d / "per_class.csv")
    per_class = pd.read_csv(d / "per_class.csv").iloc[0]
    assert per_class[["background", "train", "boat", "ball"]].tolist() == pytest.approx(100 * inter / union,
                                                                                        abs=0.005)
    assert per_class["mIoU"] == table.loc[0, "mIoU"] == pytest.approx(100 * np.mean(inter / union), abs=0.005)
    assert table.loc[0, ["precision", "recall"]].tolist() == pytest.approx(
        [100 * np.mean(inter / predicted), 100 * np.mean(inter / labelled)], abs=0.005)


def test_confusion_ratio_table_is_the_pixel_count_formula(noisy, log_info):
    """FP_{k,c} = pixels of scene label k, ground truth neither c nor 255, predicted c; TP_c = pixels
    of ground truth c predicted c; summed over images before dividing, evaluated in 3 shards; the
    target IoU from the same images."""
    d, arrays = noisy
    pairs = [{"target": "train", "coincident": "railroad"}, {"target": "boat", "coincident": "water"},
             {"target": "ball", "coincident": "water"}]
    result = run_evaluation("confusion_ratio", d / "pred", d / "ids.txt", d, EvalLabel("cam", "pseudo"), 3,
                            gt_dir=d / "gt", classes_file=d / "classes.txt", context_dir=d / "ctx", pairs=pairs)
    gt, pred, ctx = (np.stack([a[k] for a in arrays.values()]) for k in range(3))
    for row, (c, k) in zip(result["pairs"], [(1, 1), (2, 2), (3, 2)]):
        fp = np.sum((ctx == k) & (gt != c) & (gt != 255) & (pred == c))
        tp = np.sum((gt == c) & (pred == c))
        union = np.sum((gt != 255) & ((gt == c) | (pred == c)))
        assert (row["fp"], row["tp"]) == (fp, tp) and fp > 0
        assert row["confusion_ratio"] == pytest.approx(fp / tp, rel=1e-15)
        assert row["target_iou"] == pytest.approx(tp / union, rel=1e-15)
    lines = [f"pseudo/cam: {p['target']}-{p['coincident']} ratio {row['confusion_ratio']}, {p['target']} IoU "
             f"{row['target_iou']}" for p, row in zip(pairs, result["pairs"])]
    assert job_log(log_info)[-3:] == lines
    table = table_confusion_ratio([d / "cam_pseudo_confusion_ratio.json"], d / "confusion.csv")
    assert table.confusion_ratio.tolist() == [round(r["confusion_ratio"], 3) for r in result["pairs"]]
    ids, counts = load_counts(d / "cam_pseudo_confusion_ratio_per_image.npz")
    for i, per_id in zip(ids, counts):  # each id's own counts, whatever shard scored it
        g, p, x, _ = arrays[i]
        assert per_id[0].tolist() == [np.sum((x == 1) & (g != 1) & (g != 255) & (p == 1)), np.sum((g == 1) & (p == 1))]


def test_boundary_table_is_the_euclidean_match_count(noisy, log_info):
    """Boundary P/R/F1 summed over images (3 shards) against the counts by scipy's Euclidean distance
    transform: predicted edges (the label map's non-zero Laplacian, 255 a label of its own) within
    2 px of a boundary pixel, boundary pixels within 2 px of a predicted edge."""
    from scipy.ndimage import distance_transform_edt

    d, arrays = noisy
    result = run_evaluation("boundary", d / "pred", d / "ids.txt", d, EvalLabel("cam", "pseudo"), 3,
                            boundary_dir=d / "bnd", tolerance=2)
    totals = np.zeros(4, np.int64)
    ids, counts = load_counts(d / "cam_pseudo_boundary_per_image.npz")
    for i, per_id in zip(ids, counts):
        _, pred, _, bnd = arrays[i]
        # the 4-neighbour Laplacian, OpenCV's reflected border (numpy's "reflect" mode) included
        p = np.pad(pred.astype(np.int64), 1, mode="reflect")
        edges = (p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:] - 4 * p[1:-1, 1:-1]) != 0
        ref = [edges.sum(), np.sum(distance_transform_edt(~bnd)[edges] <= 2), bnd.sum(),
               np.sum(distance_transform_edt(~edges)[bnd] <= 2)]
        assert per_id.tolist() == ref, i
        totals += ref
    precision, recall = totals[1] / totals[0], totals[3] / totals[2]
    assert (result["pred_edges"], result["pred_matched"], result["gt_edges"], result["gt_matched"]) == tuple(totals)
    assert (result["precision"], result["recall"]) == pytest.approx((precision, recall), rel=1e-15)
    assert result["f1"] == pytest.approx(2 * precision * recall / (precision + recall), rel=1e-15)
    f1 = 2 * precision * recall / (precision + recall)
    assert f"pseudo/cam: boundary P {precision:.4f} R {recall:.4f} F1 {f1:.4f} (tolerance 2 px)" in job_log(log_info)
    assert table_boundary([d / "cam_pseudo_boundary.json"], d / "b.csv").loc[0, "F1"] == pytest.approx(
        100 * result["f1"], abs=0.005)


def test_a_damaged_counts_file_is_named_with_its_rule(tmp_path):
    bad = tmp_path / "boundary_0.npz"
    np.savez(bad, ids=np.array(["a"]))  # no counts
    with pytest.raises(BadInputError, match=rf"^{bad}: not a per-image counts file \('counts is not a file in the "
                                            rf"archive'\); rerun its evaluation rule$"):
        load_counts(bad)


def test_no_scored_image_stops_the_merge_with_the_shard_named(noisy):
    """Shards that scored nothing (more shards than ids, the merge given only empty ones)."""
    from wsss.stages.evaluation import evaluate_miou, evaluate_shard

    d, _ = noisy
    empty = [str(d / f"miou_{s}.npz") for s in (8, 9)]
    for s, f in zip((8, 9), empty):
        evaluate_shard("miou", str(d / "pred"), str(d / "ids.txt"), f, shard=s, num_shards=10, gt_dir=str(d / "gt"),
                       classes_file=str(d / "classes.txt"))
    with pytest.raises(BadInputError, match=rf"^{empty[0]}: its shards scored no image; check the split's id list$"):
        evaluate_miou(empty, str(d / "classes.txt"), str(d / "m.npz"), str(d / "m.json"), EvalLabel("cam", "pseudo"),
                      str(d / "m_per_image.npz"))
    with pytest.raises(BadInputError, match=rf"^{d / 'nowhere'}: no boundary map for any id scored; re-run "
                                            r"prepare_dataset$"):
        run_evaluation("boundary", d / "pred", d / "ids.txt", d, EvalLabel("cam", "pseudo"), 2,
                       boundary_dir=d / "nowhere", tolerance=2)
    (d / "nowhere").mkdir()
    (d / "nowhere" / "classes.txt").write_text("railroad\nwater\n")
    with pytest.raises(BadInputError, match=rf"^{d / 'nowhere'}: no scene-label map for any id scored; check "
                                            r"dataset.root's scene labels$"):
        run_evaluation("confusion_ratio", d / "pred", d / "ids.txt", d, EvalLabel("cam", "pseudo"), 2,
                       gt_dir=d / "gt", classes_file=d / "classes.txt", context_dir=d / "nowhere",
                       pairs=[{"target": "train", "coincident": "railroad"}])


def test_a_confusion_ratio_of_one_true_positive_and_of_none(tmp_path):
    """train: 1 true positive, 1 false positive on railroad: ratio 1; boat: no true positive: NaN."""
    (tmp_path / "classes.txt").write_text("train\nboat\n")
    write_id_list(tmp_path / "ids.txt", ["a"])
    write_label_png(tmp_path / "gt" / "a.png", np.array([[1, 0], [2, 0]], np.uint8))
    write_label_png(tmp_path / "pred" / "a.png", np.array([[1, 1], [0, 0]], np.uint8))
    write_label_png(tmp_path / "ctx" / "a.png", np.array([[1, 1], [2, 2]], np.uint8))
    (tmp_path / "ctx" / "classes.txt").write_text("railroad\nwater\n")
    pairs = [{"target": "train", "coincident": "railroad"}, {"target": "boat", "coincident": "water"}]
    result = run_evaluation("confusion_ratio", tmp_path / "pred", tmp_path / "ids.txt", tmp_path,
                            EvalLabel("cam", "pseudo"), gt_dir=tmp_path / "gt", classes_file=tmp_path / "classes.txt",
                            context_dir=tmp_path / "ctx", pairs=pairs)
    train, boat = result["pairs"]
    assert (train["fp"], train["tp"], train["confusion_ratio"]) == (1, 1, 1.0)
    assert (boat["fp"], boat["tp"], boat["confusion_ratio"]) == (0, 0, None)  # NaN, written as null


def test_a_damaged_shard_is_named_with_its_rule(tmp_path):
    from wsss.stages.evaluation import evaluate_boundary

    bad = tmp_path / "boundary_0.npz"
    bad.write_bytes(b"not a shard")
    with pytest.raises(BadInputError, match=rf"^{bad}: not an evaluation shard \(.*\); rerun evaluate_shard$"):
        evaluate_boundary([str(bad)], str(tmp_path), str(tmp_path / "b.json"), EvalLabel("cam", "pseudo"), 1.0,
                          str(tmp_path / "b_per_image.npz"))
