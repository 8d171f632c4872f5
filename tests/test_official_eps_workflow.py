"""The official EPS pseudo-masks as the workflow makes them (pseudo_masks.eps_rule: official):
infer_cams's official protocol, then make_pseudo_masks's `eps` rule, against the official infer.py
formula written out here, independently of the package.

The net is a stub with output stride 4, so the maps are upsampled 4x (and more at scale 0.5):
bilinear and nearest upsampling give different masks. The scales are not 1, so the inputs are
really resized. Two classes are present with different peaks, so only a per-class max division
gives the reference; a third class is absent but has the highest logit somewhere.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

import wsss.stages.infer_cams as cams
from conftest import TINY
from wsss import methods
from wsss.config import settings
from wsss.config.load import load_config
from wsss.core.io import load_maps, read_label_png, write_id_list, write_image
from wsss.stages.pseudo_masks import make_pseudo_masks

CLASSES = ["disc", "grass", "square"]
PRESENT = [0, 2]                      # grass (index 1) is absent from the image label
SCALES = [0.5, 1.5]
STRIDE = 4
H, W = 30, 42


class StrideStub(nn.Module):
    """An eps classifier stand-in: 4x4 average pooling (output stride 4), then a fixed 1x1 head
    whose C+1 maps (background last) respond to red, green, blue and brightness."""

    name, num_classes, background_map = "eps", len(CLASSES), True

    def __init__(self):
        super().__init__()
        self.head = nn.Conv2d(3, len(CLASSES) + 1, 1)
        with torch.no_grad():
            self.head.weight.copy_(torch.tensor([[2.0, -1.0, -1.0], [-1.0, 2.5, -1.0], [-1.0, -1.0, 1.2],
                                                 [-0.6, -0.6, -0.6]])[:, :, None, None])
            self.head.bias.copy_(torch.tensor([0.0, 0.0, 0.0, 0.5]))

    def forward(self, x):
        return self.head(F.avg_pool2d(x, STRIDE))


def write_image_set(root):
    """im0: a red disc, a blue square (weaker on its class map) and a green stripe; im1: a grey image
    whose label names no class."""
    yy, xx = np.mgrid[:H, :W]
    img = np.full((H, W, 3), 90, np.uint8)
    img[(yy - 12) ** 2 + (xx - 11) ** 2 < 64] = (230, 40, 40)
    img[14:27, 24:38] = (50, 60, 200)
    img[:5, 20:40] = (30, 220, 30)
    write_image(root / "img" / "im0.jpg", img)
    write_image(root / "img" / "im1.jpg", np.full((H, W, 3), 90, np.uint8))
    write_id_list(root / "ids.txt", ["im0", "im1"])
    with open(root / "labels.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([["id", *CLASSES], ["im0"] + [int(c in PRESENT) for c in range(len(CLASSES))],
                                  ["im1"] + [0] * len(CLASSES)])


# ---------------------------------------------------------------------------- the reference
MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def official_reference(image_path, net, label, scales, threshold, flip=True):
    """halbielee/EPS infer.py for a resnet38_eps net, written out: per scale the PIL-bicubic resized
    image and its flip; softmax over all C+1 maps at feature size; bilinear (align_corners False)
    to the image size; background dropped; × the image label; flipped view flipped back; summed
    over every view; each class divided by its own max (+1e-5); argmax over [threshold plane,
    class 0, ..., class C-1] (absent classes are zero planes). Returns (mask, normalised maps)."""
    pil = Image.open(image_path).convert("RGB")
    width, height = pil.size
    total = np.zeros((len(label), height, width))
    for s in scales:
        scaled = np.asarray(pil.resize((round(width * s), round(height * s)), resample=Image.BICUBIC))
        x = torch.from_numpy(((scaled / 255.0 - MEAN) / STD).transpose(2, 0, 1).astype(np.float32))[None]
        for flipped in (False, True) if flip else (False,):
            with torch.no_grad():
                cam = torch.softmax(net(x.flip(-1) if flipped else x), dim=1)
                cam = F.interpolate(cam, (height, width), mode="bilinear", align_corners=False)[0]
            fg = cam[:-1].numpy() * np.asarray(label, np.float64)[:, None, None]
            total += fg[..., ::-1] if flipped else fg
    norm = total / (total.max(axis=(1, 2), keepdims=True) + 1e-5)
    stack = np.concatenate([np.full((1, height, width), threshold), norm])
    return stack.argmax(axis=0).astype(np.uint8), norm, stack


def near_ties(stack, tolerance=1e-3):
    """Pixels whose winning plane leads the runner-up by less than `tolerance` (float16 storage of
    the maps may flip them), and the labels of their two best planes."""
    order = np.argsort(stack, axis=0, kind="stable")
    top = np.take_along_axis(stack, order[-2:], axis=0)
    tied = top[1] - top[0] < tolerance
    return tied, order[-2:]


@pytest.mark.parametrize("threshold, flip", [(0.2, True), (0.45, False)])
def test_workflow_official_masks_equal_the_official_formula(tmp_path, monkeypatch, threshold, flip):
    write_image_set(tmp_path)
    net = StrideStub().eval()
    # infer_cams reads the classifier through load_classifier: hand it the stub
    monkeypatch.setattr(cams, "load_classifier", lambda path: (net, {"classifier": "eps"}))
    # the parameters as the workflow's rules build them (classifier.infer, pseudo_masks sections)
    config = load_config(TINY)
    config["classifier"]["infer"] = {"scales": SCALES, "flip": flip, "num_workers": 0, "amp": False}
    config["pseudo_masks"].update(eps_rule="official", threshold=threshold)
    infer = settings.cam_inference(config, methods.classifier("eps"))
    assert infer["official"] is True
    cams.infer_cams(tmp_path / "model.pt", tmp_path / "img", tmp_path / "labels.csv", tmp_path / "ids.txt",
                    tmp_path / "cams", infer, device="cpu")
    pm = settings.pseudo_mask_params(config, methods.method("eps"))
    make_pseudo_masks(methods.method("eps"), tmp_path / "cams", tmp_path / "ids.txt", tmp_path / "masks", pm)

    label = [int(c in PRESENT) for c in range(len(CLASSES))]
    want, norm, stack = official_reference(tmp_path / "img" / "im0.jpg", net, label, SCALES, threshold, flip)
    stored = load_maps(tmp_path / "cams" / "im0.npz")
    assert stored["classes"].tolist() == PRESENT
    # the stored maps are the normalised sums (float16 on disk)
    np.testing.assert_allclose(stored["maps"].astype(np.float64), norm[PRESENT], atol=1e-3, rtol=0)
    # Equal wherever the decision is wider than float16 rounding; at the few near-ties, one of the
    # two best labels (plane index = VOC label here: 0 background, c + 1 class c).
    got = read_label_png(tmp_path / "masks" / "im0.png")
    tied, best_two = near_ties(stack)
    assert tied.sum() <= 12  # of 1260 pixels
    np.testing.assert_array_equal(got[~tied], want[~tied])
    assert ((got == best_two[0]) | (got == best_two[1]))[tied].all()
    # the case is not degenerate: background and both present classes win pixels
    assert set(np.unique(want)) == {0, 1, 3}
    # an image whose label names no class: no maps, all background
    empty = load_maps(tmp_path / "cams" / "im1.npz")
    assert empty["classes"].tolist() == [] and empty["maps"].shape == (0, H, W)
    assert not read_label_png(tmp_path / "masks" / "im1.png").any()

