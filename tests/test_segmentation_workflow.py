"""Integration (slow): the segmentation stage's outputs in the session's tiny run of the whole DAG,
value for value against references computed here from the run's own files.

- The CRF pseudo-masks: pydensecrf called directly on each method's unary, written out here (the
  `labels` unary of cam and cam_sal from their pseudo-masks, eps's stored softmax), with the config's
  kernel parameters.
- DeepLab's val predictions: the trained network's logits, upsampled bilinearly (reference_ops), the
  flipped view flipped back (deeplab.infer_flip), argmax; its CRF masks: the same dense CRF over the
  softmax restricted to background + the predicted classes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from reference_ops import bilinear, normalise, softmax

from conftest import TINY
from wsss.config.load import load_config
from wsss.core import results
from wsss.core.io import read_id_list, read_image, read_label_png

pytestmark = pytest.mark.slow

CONFIG = load_config(TINY)
CHECKED = 6  # images per method whose CRF masks are recomputed (each a dense CRF here)


def dense_crf(image: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """argmax index (H, W) of pydensecrf's mean field with the config's crf kernels on −log probs."""
    import pydensecrf.densecrf as dcrf

    c = CONFIG["crf"]
    n, h, w = probs.shape
    d = dcrf.DenseCRF2D(w, h, n)
    d.setUnaryEnergy(np.ascontiguousarray(-np.log(np.clip(probs, 1e-8, 1.0)).reshape(n, -1).astype(np.float32)))
    d.addPairwiseGaussian(sxy=c["pos_xy_std"], compat=c["pos_w"])
    d.addPairwiseBilateral(sxy=c["bi_xy_std"], srgb=c["bi_rgb_std"], rgbim=np.array(image, order="C"),
                           compat=c["bi_w"])
    return np.asarray(d.inference(c["iterations"])).reshape(n, h, w).argmax(0)


def labels_unary(mask: np.ndarray, classes: list[int]) -> np.ndarray:
    """gt_prob on the pixel's label, the rest spread evenly; 255 and labels outside `classes` uniform."""
    g = CONFIG["crf"]["gt_prob"]
    probs = np.full((len(classes),) + mask.shape, (1 - g) / (len(classes) - 1), np.float32)
    for k, c in enumerate(classes):
        probs[k][mask == c] = g
    probs[:, ~np.isin(mask, classes)] = 1 / len(classes)
    return probs


@pytest.mark.parametrize("method", CONFIG["methods"])
def test_crf_pseudo_masks_are_the_dense_crf_of_the_method_unary(tiny_run, method):
    prep = tiny_run / "resources/synthetic/prepared"
    ids = read_id_list(prep / "lists/train_aug.txt")  # deeplab.train_on_crf: DeepLab's whole training set
    out = tiny_run / results.path("pseudo_masks_crf", method=method)
    assert sorted(p.stem for p in out.glob("*.png")) == sorted(ids)
    labels = pd.read_csv(prep / "labels.csv").set_index("id")
    for i in ids[:CHECKED]:
        image = read_image(prep / "JPEGImages" / f"{i}.jpg")
        present = [0] + [k + 1 for k, v in enumerate(labels.loc[i]) if v == 1]
        if method == "eps":  # crf.unary probs (the method's default): the stored softmax, background last
            with np.load(tiny_run / results.path("cams", variant="", classifier="eps") / f"{i}.npz") as maps:
                probs = maps["probs"].astype(np.float32)
                order = [int(k) + 1 for k in maps["classes"]] + [0]
            probs = np.clip(probs, 0, None) / np.clip(probs, 0, None).sum(0)
        else:  # crf.unary labels: the pseudo-mask with gt_prob
            mask = read_label_png(tiny_run / results.path("pseudo_masks", variant="", method=method) / f"{i}.png")
            order, probs = present, labels_unary(mask, present)
        expected = np.array(order, np.uint8)[dense_crf(image, probs)]
        np.testing.assert_array_equal(read_label_png(out / f"{i}.png"), expected, err_msg=f"{method} {i}")


@pytest.mark.parametrize("method", CONFIG["deeplab"]["methods"])
def test_deeplab_val_predictions_are_the_network_upsampled_flipped_argmax(tiny_run, method):
    from wsss.stages.infer_segmentation import load_deeplab

    prep = tiny_run / "resources/synthetic/prepared"
    root = tiny_run / "results/deeplab" / method
    model, config = load_deeplab(root / "model.pt")
    assert config["num_classes"] == len(CONFIG["dataset"]["classes"]) + 1
    loss = pd.read_csv(root / "loss.csv")
    assert list(loss["step"]) == list(range(1, CONFIG["deeplab"]["iterations"] + 1))
    assert CONFIG["deeplab"]["infer_scales"] == [1.0] and CONFIG["deeplab"]["infer_flip"]
    val = read_id_list(prep / "lists/val.txt")
    for sub in ("pred", "pred_crf"):
        assert sorted(p.stem for p in (root / sub).glob("*.png")) == sorted(val)
    for i in val:
        image = read_image(prep / "JPEGImages" / f"{i}.jpg")
        x = torch.from_numpy(np.ascontiguousarray(normalise(image))).float()[None]
        with torch.no_grad():
            logits = model(torch.cat([x, x.flip(-1)])).double().numpy()
        views = [softmax(bilinear(v, image.shape[:2])) for v in logits]
        probs = (views[0] + views[1][..., ::-1]) / 2
        top2 = np.sort(probs, axis=0)[-2:]
        assert (top2[1] - top2[0]).min() > 1e-5, i  # no near-tie that float32 (the job) and float64 could split
        pred = read_label_png(root / "pred" / f"{i}.png")
        np.testing.assert_array_equal(pred, probs.argmax(0), err_msg=f"{method} {i}")
        classes = sorted({0, *np.unique(pred).tolist()})
        restricted = probs[classes] / probs[classes].sum(0)
        expected = np.array(classes, np.uint8)[dense_crf(image, restricted)]
        np.testing.assert_array_equal(read_label_png(root / "pred_crf" / f"{i}.png"), expected, err_msg=f"{method} {i}")
    assert (tiny_run / "benchmarks/train_segmentation" / f"{method}.tsv").exists()
