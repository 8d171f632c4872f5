"""The map files infer_cams stores, value for value, against the protocol written out in numpy.

Both inference paths run through `wsss.stages.infer_cams.infer_cams`, the function the rule calls,
with a stub classifier of output stride 2 (so the maps are upsampled), scales other than 1 and flip:
- the multi-scale path (cam, cam_sal and eps with eps_rule argmax): each scale's input resized
  bilinearly, each view's raw maps upsampled bilinearly to the image, the flipped view flipped back,
  ReLU maps and (eps) the softmax over the present classes + background averaged over the views;
- the official path (eps_rule official): PIL-bicubic inputs, softmax over all maps (eps) or ReLU (cam)
  at feature resolution, bilinear upsampling, flip back, sum, each class divided by its max + 1e-5.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from reference_ops import bilinear, normalise, softmax, stub_maps
from torch import nn

import wsss.stages.infer_cams as stage
from wsss.core.io import load_maps, read_image, write_id_list, write_image

torch.set_num_threads(1)

H, W, STRIDE = 12, 16, 2  # every scale below gives a size divisible by the stride
PRESENT = [0, 2]  # class 1 is absent: its map must not be stored, nor enter the eps softmax


class StubClassifier(nn.Module):
    """Output stride 2; maps = reference_ops.stub_maps with this module's parameters."""

    name = "stub"

    def __init__(self, num_classes: int, background_map: bool):
        super().__init__()
        self.num_classes, self.background_map = num_classes, background_map
        g = torch.Generator().manual_seed(1)
        n = num_classes + background_map
        self.mix = nn.Parameter(torch.randn(n, 3, generator=g))
        self.tilt = nn.Parameter(2 * torch.randn(n, generator=g))

    def forward(self, x):
        maps = F.avg_pool2d(torch.einsum("kc,nchw->nkhw", self.mix, x), STRIDE)
        return maps + self.tilt[:, None, None] * torch.linspace(0.0, 1.0, maps.shape[-1], device=x.device)

    def params(self):
        return self.mix.detach().double().numpy(), self.tilt.detach().double().numpy()


@pytest.fixture
def scene(tmp_path):
    image = np.random.default_rng(7).integers(0, 256, (H, W, 3), dtype=np.uint8)
    write_image(tmp_path / "img" / "a.jpg", image)
    (tmp_path / "labels.csv").write_text("id,x,y,z\na,1,0,1\n")
    write_id_list(tmp_path / "ids.txt", ["a"])
    return tmp_path


def run(scene, monkeypatch, net, cfg):
    monkeypatch.setattr(stage, "load_classifier", lambda path: (net, {}))
    n = stage.infer_cams(scene / "model.pt", scene / "img", scene / "labels.csv", scene / "ids.txt",
                         scene / "out", {"num_workers": 0, **cfg}, device="cpu")
    assert n == 1
    return load_maps(scene / "out" / "a.npz")


def multiscale_reference(net, image, scales, flip):
    """(maps (K, H, W), probs (K+1, H, W) or None): the multi-scale protocol, view by view."""
    mix, tilt = net.params()
    keep = PRESENT + ([net.num_classes] if net.background_map else [])
    x = normalise(image)
    maps, probs, n = 0.0, 0.0, 0
    for s in scales:
        size = (round(H * s), round(W * s))
        xs = x if s == 1 else bilinear(x, size)
        for flipped in (False, True)[: 1 + flip]:
            out = stub_maps(mix, tilt, xs[..., ::-1] if flipped else xs, STRIDE)
            out = out[..., ::-1] if flipped else out
            up = bilinear(out[keep], (H, W))
            maps = maps + np.maximum(up[: len(PRESENT)], 0)
            probs = probs + softmax(up)
            n += 1
    return maps / n, (probs / n if net.background_map else None)


@pytest.mark.parametrize("classifier", ["cam", "eps"])
def test_multiscale_maps_are_the_bilinear_flip_average(scene, monkeypatch, classifier):
    net = StubClassifier(3, classifier == "eps")
    scales = [0.5, 1.5]
    got = run(scene, monkeypatch, net, {"scales": scales, "flip": True, "map_dtype": "float16"})
    maps, probs = multiscale_reference(net, read_image(scene / "img" / "a.jpg"), scales, flip=True)
    assert got["classes"].tolist() == PRESENT
    # float16 storage: half a unit in the last place is 2^-11 of the value
    np.testing.assert_allclose(got["maps"], maps, rtol=1e-3, atol=1e-4)
    if classifier == "eps":
        np.testing.assert_allclose(got["probs"], probs, rtol=1e-3, atol=1e-4)
    else:
        assert "probs" not in got


@pytest.mark.parametrize("scale", [1.0, 2.0])
def test_multiscale_maps_without_flip_at_one_scale(scene, monkeypatch, scale):
    net = StubClassifier(3, True)
    got = run(scene, monkeypatch, net, {"scales": [scale], "flip": False, "map_dtype": "float16"})
    maps, probs = multiscale_reference(net, read_image(scene / "img" / "a.jpg"), [scale], flip=False)
    np.testing.assert_allclose(got["maps"], maps, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(got["probs"], probs, rtol=1e-3, atol=1e-4)


def official_reference(net, image, scales, flip):
    """(K, H, W): infer.py's protocol, summed over the views, each class divided by its max + 1e-5."""
    mix, tilt = net.params()
    total = 0.0
    for s in scales:
        size = (round(W * s), round(H * s))  # PIL: (width, height)
        scaled = np.asarray(Image.fromarray(image).resize(size, Image.BICUBIC)) if s != 1 else image
        x = normalise(scaled)
        for flipped in (False, True)[: 1 + flip]:
            out = stub_maps(mix, tilt, x[..., ::-1] if flipped else x, STRIDE)
            out = softmax(out) if net.background_map else np.maximum(out, 0)  # before upsampling
            up = bilinear(out, (H, W))[PRESENT]
            total = total + (up[..., ::-1] if flipped else up)
    return total / (total.max(axis=(1, 2), keepdims=True) + 1e-5)


@pytest.mark.parametrize("classifier, map_dtype", [("cam", "float16"), ("eps", "float16"), ("eps", "uint8")])
def test_official_maps_are_the_summed_views_normalised_per_class(scene, monkeypatch, classifier, map_dtype):
    net = StubClassifier(3, classifier == "eps")
    scales = [0.5, 1.5]
    got = run(scene, monkeypatch, net, {"scales": scales, "flip": True, "official": True, "map_dtype": map_dtype})
    expected = official_reference(net, read_image(scene / "img" / "a.jpg"), scales, flip=True)
    assert got["classes"].tolist() == PRESENT and bool(got["official"])
    assert np.load(scene / "out" / "a.npz")["maps"].dtype == map_dtype  # the configured storage (COCO: uint8)
    # uint8 keeps each class's peak and 255 levels below it: within half a level of the peak (1 here)
    np.testing.assert_allclose(got["maps"], expected, rtol=1e-3, atol=1e-4 if map_dtype == "float16" else 1 / 510)
    assert "probs" not in got


@pytest.mark.parametrize("classifier", ["cam", "eps"])
def test_multiscale_maps_stay_on_the_image_device(classifier):
    """Every buffer on the image's device (a GPU in a real run): checked on torch's `meta` device, where
    a tensor made on the CPU by mistake cannot be mixed with the model's output."""
    net = StubClassifier(3, classifier == "eps").to("meta")
    cfg = stage.CamInferConfig(scales=[0.5, 1.0], flip=True, num_workers=0, amp=False, map_dtype="float16")
    with warnings.catch_warnings():  # amp off by default: no CUDA autocast asked for, nor warned about on a CPU
        warnings.simplefilter("error")
        out = stage.multiscale_maps(net, torch.empty(3, H, W, device="meta"), PRESENT, cfg)
    expected = {"maps": ("meta", (len(PRESENT), H, W))}
    if classifier == "eps":
        expected["probs"] = ("meta", (len(PRESENT) + 1, H, W))
    assert {k: (v.device.type, tuple(v.shape)) for k, v in out.items()} == expected


@pytest.mark.parametrize("classifier", ["cam", "eps"])
def test_official_maps_stay_on_the_model_device_until_the_copy_out(classifier):
    """The official path returns numpy, so on `meta` it must get as far as the final copy to the host:
    a buffer or an input left on the CPU fails earlier, mixing devices."""
    from wsss.methods.eps_official import official_maps

    net = StubClassifier(3, classifier == "eps").to("meta")
    image = np.zeros((H, W, 3), np.uint8)
    with pytest.raises(NotImplementedError, match="^Cannot copy out of meta tensor"):
        official_maps(net, image, PRESENT, scales=[0.5, 1.0], flip=True)
