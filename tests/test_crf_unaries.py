"""The CRF unary of every method, value for value, where the rule refine_crf builds it.

`wsss.stages.crf.refine_crf` runs with the settings the rule passes (wsss.config.settings.crf_refinement)
for the embedded default and the paper config; the dense CRF itself is replaced by a function that
records the unary it is given. The expected unaries are written out by hand on a 2 × 3 image:
- `probs` from CAMs (cam; cam_sal without its gate): [background plane = pseudo_masks.threshold,
  each class map / its max], each pixel scaled to sum to one;
- cam_sal's gate: where saliency < pseudo_masks.saliency_threshold the background score is 1;
- `probs` of eps: the stored softmax (present classes, background last) as it is;
- `labels` (gt, released, and cam / cam_sal on the paper config): crf.gt_prob on the pixel's label,
  the rest spread evenly over background + the image's classes; ignore and absent labels uniform.
"""

from __future__ import annotations

import numpy as np
import pytest

import wsss.stages.crf as crf_stage
from conftest import REPO
from wsss.config import settings
from wsss.config.load import load_config
from wsss.core.io import read_label_png, save_maps, write_gray_png, write_id_list, write_image, write_label_png
from wsss.methods import method

# The image's classes: 0-based 0 and 2 (VOC labels 1 and 3) of three.
N1 = np.array([[1, 0.5, 0], [0.25, 0.125, 0]])   # class 0's map [[4, 2, 0], [1, .5, 0]] / its max 4
N3 = np.array([[0, 0.5, 1], [0, 0.25, 0.125]])   # class 2's map [[0, 1, 2], [0, .5, .25]] / its max 2
SALIENCY = np.array([[255, 0, 128], [127, 255, 0]], np.uint8)  # / 255: not salient (< 0.5) at (0,1), (1,0), (1,2)
EPS_P1 = np.array([[0.5, 0.25, 0.125], [0.75, 0, 0.25]])
EPS_P3 = np.array([[0.25, 0.25, 0.625], [0.125, 0.5, 0.25]])
EPS_BG = 1 - EPS_P1 - EPS_P3
MASK = np.array([[1, 0, 3], [255, 2, 0]], np.uint8)  # 255: ignored; 2: a class the image label rules out


@pytest.fixture
def scene(tmp_path):
    write_image(tmp_path / "img" / "a.jpg", np.full((2, 3, 3), 100, np.uint8))
    write_id_list(tmp_path / "ids.txt", ["a"])
    (tmp_path / "labels.csv").write_text("id,x,y,z\na,1,0,1\n")
    save_maps(tmp_path / "cams" / "cam" / "a.npz", np.array([0, 2]),
              np.stack([4 * N1, 2 * N3]).astype(np.float32))
    save_maps(tmp_path / "cams" / "eps" / "a.npz", np.array([0, 2]), np.stack([EPS_P1, EPS_P3]).astype(np.float32),
              probs=np.stack([EPS_P1, EPS_P3, EPS_BG]).astype(np.float32))
    write_gray_png(tmp_path / "sal" / "a.png", SALIENCY)
    write_label_png(tmp_path / "masks" / "a.png", MASK)
    return tmp_path


def expected_unary(kind: str, config: dict) -> tuple[list[int], np.ndarray]:
    pm, g = config["pseudo_masks"], config["crf"]["gt_prob"]
    t, s = pm["threshold"], pm["saliency_threshold"]
    if kind == "labels":
        other = (1 - g) / 2
        probs = np.full((3, 2, 3), other)
        for k, label in enumerate([0, 1, 3]):
            probs[k][MASK == label] = g
        probs[:, (MASK == 255) | (MASK == 2)] = 1 / 3
        return [0, 1, 3], probs
    if kind == "eps":
        return [1, 3, 0], np.stack([EPS_P1, EPS_P3, EPS_BG])
    background = np.full((2, 3), t)
    if kind == "cam_sal":
        background[SALIENCY / 255 < s] = 1.0
    stack = np.stack([background, N1, N3])
    return [0, 1, 3], stack / stack.sum(0)


# the unary each method's CRF must get: the embedded default refines every classifier's maps
# (crf.unary probs), the paper config each method's own (labels for CAM, probs for EPS)
CASES = {
    "config/config.yaml": {"cam": "cam", "cam_sal": "cam_sal", "eps": "eps", "gt": "labels", "released": "labels"},
    "config/voc12.yaml": {"cam": "labels", "cam_sal": "labels", "eps": "eps", "gt": "labels", "released": "labels"},
}


@pytest.mark.parametrize("config_file,name", [(c, m) for c, methods in CASES.items() for m in methods])
def test_refine_crf_gives_each_method_its_unary(scene, monkeypatch, config_file, name):
    config = load_config(REPO / config_file)
    record = method(name)
    got = []

    def recording_crf(image, probs, cfg):
        got.append(np.array(probs))
        return probs

    monkeypatch.setattr(crf_stage, "dense_crf", recording_crf)
    unary = settings.crf_unary(config, record)
    maps = None if unary != "probs" else scene / "cams" / record.classifier
    saliency = scene / "sal" if settings.crf_saliency_gated(config, record) else None
    crf_stage.refine_crf(scene / "ids.txt", scene / "img", scene / "out", settings.crf_refinement(config, record),
                         masks_dir=scene / "masks", maps_dir=maps, saliency_dir=saliency,
                         labels_csv=scene / "labels.csv")
    labels, expected = expected_unary(CASES[config_file][name], config)
    [probs] = got
    np.testing.assert_allclose(probs, expected, rtol=1e-6, atol=1e-7)
    # the written mask is the unary's argmax in VOC labels: the labels follow the unary's order
    np.testing.assert_array_equal(read_label_png(scene / "out" / "a.png"), np.array(labels)[expected.argmax(0)])


def test_probs_from_maps_on_float16_negative_and_empty_inputs():
    """The edges of the unary builder: float16 map files (classifier.infer.map_dtype) computed in float32,
    negative scores as zero, a pixel with no score at all uniform, the gate strict at its threshold."""
    maps16 = np.array([[[0.3, -0.2, 0.7]], [[0.1, 0.9, 0.0]]], np.float16)  # (K=2, 1, 3), one negative
    labels, probs = crf_stage.probs_from_maps({"classes": np.array([0, 2]), "maps": maps16}, 0.35)
    m = np.clip(maps16.astype(np.float64), 0, None)
    planes = np.concatenate([np.full((1, 1, 3), 0.35), m / m.max(axis=(1, 2), keepdims=True)])
    assert labels == [0, 1, 3] and probs.dtype == np.float32
    np.testing.assert_allclose(probs, planes / planes.sum(0), rtol=1e-6)
    # eps: the softmax as it is, a negative entry as 0, a pixel of zeros spread evenly (1 / L)
    eps = np.array([[[0.5, -0.1, 0.0]], [[0.3, 0.6, 0.0]], [[0.2, 0.5, 0.0]]], np.float16)
    labels, probs = crf_stage.probs_from_maps({"classes": np.array([1, 4]), "maps": eps[:2], "probs": eps}, 0.5)
    kept = np.clip(eps.astype(np.float64), 0, None)
    expected = np.concatenate([kept[..., :2] / kept[..., :2].sum(0), np.full((3, 1, 1), 1 / 3)], axis=-1)
    assert labels == [2, 5, 0] and probs.dtype == np.float32
    np.testing.assert_allclose(probs, expected, rtol=1e-6)
    # the gate raises the background where saliency is below the threshold, not where it equals it
    maps = np.array([[[1.0, 1.0]]], np.float32)
    _, gated = crf_stage.probs_from_maps({"classes": np.array([0]), "maps": maps}, 0.25,
                                         np.array([[0.5, 0.49]], np.float32), 0.5)
    np.testing.assert_allclose(gated[:, 0], [[0.2, 0.5], [0.8, 0.5]], rtol=1e-6)


def test_probs_from_maps_refusals_name_the_fix():
    maps = {"classes": np.array([0, 2]), "maps": np.ones((1, 2, 2), np.float32)}
    with pytest.raises(crf_stage.BadInputError, match=r"^map file has 2 maps for 3 labels; re-run infer_cams$"):
        crf_stage.probs_from_maps(maps, 0.5)
    maps = {"classes": np.array([0]), "maps": np.ones((1, 2, 2), np.float32)}
    with pytest.raises(ValueError, match=r"^saliency gating needs saliency_threshold "
                                         r"\(pseudo_masks.saliency_threshold\)$"):
        crf_stage.probs_from_maps(maps, 0.5, np.ones((2, 2)), None)
    with pytest.raises(crf_stage.BadInputError, match=r"^saliency map \(2, 3\) and maps \(2, 2\) differ in size; "
                                                      r"re-run infer_saliency and infer_cams \(snakemake "
                                                      r"--forcerun infer_cams\)$"):
        crf_stage.probs_from_maps(maps, 0.5, np.ones((2, 3)), 0.5)


def test_label_unary_is_float32():
    probs = crf_stage.label_unary(np.array([[0, 1]], np.uint8), [0, 1], 0.9)
    assert probs.dtype == np.float32
    np.testing.assert_array_equal(probs, np.array([[[0.9, 0.1]], [[0.1, 0.9]]], np.float32))
