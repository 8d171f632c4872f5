"""DeepLab's predictions, as the rule infer_segmentation writes them, against the protocol in numpy.

A stub network of output stride 4 stands in for DeepLab; the reference computes each view's logits,
upsamples them bilinearly to the image, takes the softmax, flips the flipped view back and averages
over scales and flips. The predicted PNG must be its argmax, and the CRF must receive its softmax
restricted to background + the predicted classes (the deeplab_crf rows' unary).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from reference_ops import bilinear, normalise, softmax, stub_maps
from torch import nn

import wsss.stages.infer_segmentation as stage
from wsss.core.io import read_image, read_label_png, write_id_list, write_image

torch.set_num_threads(1)

H, W, STRIDE, CLASSES = 16, 24, 4, 4  # every scale below gives a size divisible by the stride
SCALES = [0.5, 1.5]


class StubDeepLab(nn.Module):
    """Output stride 4; logits = reference_ops.stub_maps with this module's parameters."""

    def __init__(self, seed: int):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.mix = nn.Parameter(torch.randn(CLASSES, 3, generator=g))
        self.tilt = nn.Parameter(3 * torch.randn(CLASSES, generator=g))

    def forward(self, x):
        logits = F.avg_pool2d(torch.einsum("kc,nchw->nkhw", self.mix, x), STRIDE)
        return logits + self.tilt[:, None, None] * torch.linspace(0.0, 1.0, logits.shape[-1])


def reference_probs(net, image, scales, flip):
    """(C, H, W): softmax of the bilinearly upsampled logits, flipped views flipped back, averaged."""
    mix, tilt = net.mix.detach().double().numpy(), net.tilt.detach().double().numpy()
    x = normalise(image)
    total, n = 0.0, 0
    for s in scales:
        xs = x if s == 1 else bilinear(x, (round(H * s), round(W * s)))
        for flipped in (False, True)[: 1 + flip]:
            probs = softmax(bilinear(stub_maps(mix, tilt, xs[..., ::-1] if flipped else xs, STRIDE), (H, W)))
            total = total + (probs[..., ::-1] if flipped else probs)
            n += 1
    return total / n


def scene_image(seed=3):
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


@pytest.mark.parametrize("scales,flip", [(SCALES, True), ([1.0], True), ([1.0, 0.5], False), ([2.0], False)])
def test_predict_probs_matches_the_reference(scales, flip):
    net = StubDeepLab(0).eval()
    image = scene_image()
    got = stage.predict_probs(net, torch.from_numpy(normalise(image)).float()[None], scales, flip)
    np.testing.assert_allclose(got.numpy(), reference_probs(net, image, scales, flip), rtol=1e-5, atol=1e-6)


def test_predict_probs_flips_only_when_asked():
    net = StubDeepLab(0).eval()
    image = scene_image()
    got = stage.predict_probs(net, torch.from_numpy(normalise(image)).float()[None], [1.0])
    np.testing.assert_allclose(got.numpy(), reference_probs(net, image, [1.0], False), rtol=1e-5, atol=1e-6)
    assert not np.allclose(got.numpy(), reference_probs(net, image, [1.0], True), atol=1e-4)


def test_infer_segmentation_writes_the_reference_argmax_and_crf_unary(tmp_path, monkeypatch):
    net = StubDeepLab(26).eval()  # seeds where three classes win somewhere, none by a near-tie
    write_image(tmp_path / "img" / "a.jpg", scene_image(4))
    write_id_list(tmp_path / "ids.txt", ["a"])
    monkeypatch.setattr(stage, "load_deeplab", lambda path: (net, {}))
    jobs = []
    monkeypatch.setattr(stage, "refine_probs_job", jobs.append)
    stage.infer_segmentation(tmp_path / "m.pt", tmp_path / "ids.txt", tmp_path / "img", tmp_path / "pred",
                             tmp_path / "crf", crf={"iterations": 1}, scales=SCALES, flip=True, device="cpu")
    probs = reference_probs(net, read_image(tmp_path / "img" / "a.jpg"), SCALES, flip=True)
    top2 = np.sort(probs, axis=0)[-2:]
    assert (top2[1] - top2[0]).min() > 1e-3  # no near-tie: the argmax below is the reference's, not rounding's
    pred = probs.argmax(0)
    assert sorted(np.unique(pred)) == [0, 1, 3]  # class 2 predicted nowhere: the CRF must leave it out
    np.testing.assert_array_equal(read_label_png(tmp_path / "pred" / "a.png"), pred)
    [(image_id, _, classes, sub, _, cfg)] = jobs
    assert image_id == "a" and list(classes) == [0, 1, 3] and cfg["unary"] == "probs"
    np.testing.assert_allclose(sub, probs[[0, 1, 3]] / probs[[0, 1, 3]].sum(0), rtol=1e-5, atol=1e-6)
