"""The official EPS pseudo-mask protocol: the mask rule on crafted maps, and the multi-scale sum."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from wsss.core.images import normalize
from wsss.methods import CLASSIFIERS
from wsss.methods.eps_official import OFFICIAL_SCALES, official_eps_mask, official_maps
from wsss.models.classifier import build_classifier


def test_mask_normalises_each_summed_map_by_its_max_and_thresholds():
    classes = [3, 0]                                     # unsorted on purpose
    maps = np.array([[[4.0, 2.0, 0.0], [1.0, 0.5, 0.0]],  # class 3: /4 → 1, .5, 0 / .25, .125, 0
                     [[0.0, 0.3, 0.3], [0.1, 0.05, 0.0]]],  # class 0: /.3 → 0, 1, 1 / .333, .167, 0
                    np.float32)
    mask = official_eps_mask(classes, maps, threshold=0.2)
    assert mask.dtype == np.uint8
    assert mask.tolist() == [[4, 1, 1], [1, 0, 0]]
    assert official_eps_mask(classes, maps, threshold=0.4).tolist() == [[4, 1, 1], [0, 0, 0]]
    # only each map's own scale matters
    scaled = maps * np.array([10.0, 0.01], np.float32)[:, None, None]
    assert official_eps_mask(classes, scaled, 0.2).tolist() == [[4, 1, 1], [1, 0, 0]]


def test_mask_ties_and_edge_cases():
    same = np.ones((2, 1, 2), np.float32)
    assert official_eps_mask([5, 2], same, 0.2).tolist() == [[3, 3]]  # tie → lower class index
    zeros = np.zeros((1, 2, 2), np.float32)
    assert not official_eps_mask([1], zeros, 0.0).any()              # tie with the background → background
    assert official_eps_mask([], np.zeros((0, 2, 3), np.float32), 0.2).shape == (2, 3)
    with pytest.raises(ValueError, match=r"^maps must be \(K, H, W\) for K=2 classes, got shape \(1, 2, 2\)$"):
        official_eps_mask([1, 2], zeros, 0.2)
    with pytest.raises(ValueError, match=r"^threshold must be >= 0, got -0\.1$"):
        official_eps_mask([1], zeros, -0.1)
    # max + 1e-5, as infer.py: a map's own peak normalises to 0.1 / 0.10001 = 0.9999, under a 0.99995
    # plane (with max − 1e-5 it would be 1.0001, over it)
    peak = np.full((1, 1, 1), 0.1, np.float32)
    assert official_eps_mask([0], peak, 0.99995).tolist() == [[0]]
    assert official_eps_mask([0], peak, 0.9998).tolist() == [[1]]
    # map files hold float16, where max + 1e-5 rounds back to max (0.1's spacing is 6e-5): the rule
    # computes in float32, so the stored maps give the same mask
    assert official_eps_mask([0], peak.astype(np.float16), 0.99995).tolist() == [[0]]
    # classes in any shape (a column of indices), and an empty image
    assert official_eps_mask(np.array([[3], [0]]), np.ones((2, 1, 2), np.float32), 0.2).tolist() == [[1, 1]]
    assert official_eps_mask([1], np.zeros((1, 0, 3), np.float32), 0.2).shape == (0, 3)
    # infer.py's stack is float32, plane included: a map that normalises to exactly float32(0.3)
    # (0.30000302 / (1 + 1e-5)) ties with the 0.3 plane, and the tie goes to the background
    tie = np.array([[[1.0, 0.30000302]]], np.float32)
    assert official_eps_mask([0], tie, 0.3).tolist() == [[1, 0]]


class StubNet(nn.Module):
    """Output stride 1; class maps from the input's red channel; records its inputs."""

    def __init__(self, method: str, num_classes: int = 2):
        super().__init__()
        self.background_map, self.num_classes = method == "eps", num_classes
        self.dummy = nn.Parameter(torch.zeros(1))
        self.inputs = []

    def forward(self, x):
        self.inputs.append(x.clone())
        n, _, h, w = x.shape
        maps = torch.zeros(n, self.num_classes + self.background_map, h, w)
        maps[:, 0] = x[:, 0]          # class 0 follows the image
        maps[:, 1] = -1.0             # class 1: negative logit (ReLU → 0 for cam)
        return maps


def image(h=6, w=10, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_eps_softmax_over_all_maps_then_label_and_sum_over_flips():
    img = image()
    net = StubNet("eps")
    got = official_maps(net, img, [1, 0], scales=[1.0], flip=True)
    x = normalize(img)[0].numpy()                       # class 0's logit per pixel
    p0 = np.exp(x) / (np.exp(x) + math.exp(-1.0) + 1.0)  # softmax over (class 0, class 1, background)
    p1 = math.exp(-1.0) / (np.exp(x) + math.exp(-1.0) + 1.0)
    assert got.shape == (2, 6, 10) and got.dtype == np.float32
    np.testing.assert_allclose(got[1], 2 * p0, rtol=1e-5)   # the flipped view, flipped back, adds the same
    np.testing.assert_allclose(got[0], 2 * p1, rtol=1e-5)
    assert torch.equal(net.inputs[0][1], net.inputs[0][0].flip(-1))


def test_cam_protocol_relu_no_softmax():
    got = official_maps(StubNet("cam"), image(), [0, 1], scales=[1.0], flip=False)
    np.testing.assert_allclose(got[0], np.maximum(normalize(image())[0].numpy(), 0), rtol=1e-6)
    assert not got[1].any()


def test_inputs_are_pil_bicubic_resized_per_scale():
    img = image(20, 30, seed=1)
    net = StubNet("eps")
    got = official_maps(net, img, [0], scales=OFFICIAL_SCALES, flip=True)
    assert [tuple(x.shape) for x in net.inputs] == [(2, 3, 10, 15), (2, 3, 20, 30), (2, 3, 30, 45),
                                                    (2, 3, 40, 60)]
    expected = normalize(np.asarray(Image.fromarray(img).resize((45, 30), Image.BICUBIC)))
    assert torch.allclose(net.inputs[2][0], expected)
    assert got.shape == (1, 20, 30)
    assert 0 < got.min() and got.max() < 8    # 8 views, each a probability


def test_defaults_inputs_and_errors():
    img = image(20, 30, seed=2)
    net = StubNet("eps")
    got = official_maps(net, img, [0])                  # the official scales, with flips
    assert [tuple(x.shape) for x in net.inputs] == [(2, 3, 10, 15), (2, 3, 20, 30), (2, 3, 30, 45), (2, 3, 40, 60)]
    np.testing.assert_array_equal(official_maps(StubNet("eps"), img.astype(np.int64), [0]), got)  # any int image
    assert got.dtype == np.float32
    default = torch.get_default_dtype()
    try:
        torch.set_default_dtype(torch.float64)          # a caller's float64 default: still float32 maps
        assert official_maps(StubNet("eps"), img, [0], scales=[1.0]).dtype == np.float32
    finally:
        torch.set_default_dtype(default)
    with pytest.raises(ValueError, match=r"^image must be \(H, W, 3\) uint8 RGB, got shape \(20, 30\)$"):
        official_maps(net, img[..., 0], [0])
    with pytest.raises(ValueError, match=r"^image must be \(H, W, 3\) uint8 RGB, got shape \(20, 30, 4\)$"):
        official_maps(net, np.concatenate([img, img[..., :1]], axis=2), [0])
    with pytest.raises(ValueError, match=r"^present classes \[0, 2\] outside 0\.\.1$"):
        official_maps(net, img, [0, 2])


def test_with_a_real_classifier():
    torch.manual_seed(0)
    model = build_classifier(CLASSIFIERS["eps"], 3, "small", width=8).train()
    maps = official_maps(model, image(32, 24), [2, 0])
    assert maps.shape == (2, 32, 24) and np.isfinite(maps).all()
    assert model.training                       # the caller's mode is restored
    mask = official_eps_mask([2, 0], maps, 0.2)
    assert set(np.unique(mask)) <= {0, 1, 3}
    with pytest.raises(ValueError):
        official_maps(model, image(), [3])
