"""EPS loss on hand-computed cases, map selection, gradient routing; backbones and heads."""

from __future__ import annotations

import math

import pytest
import torch

from wsss.core.io import BadInputError
from wsss.methods import CLASSIFIERS
from wsss.methods.cam_loss import cam_step, classification_loss
from wsss.methods.eps import EpsSettings
from wsss.methods.eps_loss import eps_loss, eps_step, overlap_ratios, resize_saliency, select_maps
from wsss.models.backbones import SmallCnn, build_backbone
from wsss.models.classifier import build_classifier


def maps_from_probs(probs):
    """Logits whose softmax over dim 1 is exactly `probs` (log of probabilities)."""
    return torch.tensor(probs, dtype=torch.float64).log().float()


# Two pixels (1×2), C = 2 classes + background. Pixel 0: P = (0.7, 0.1, 0.2); pixel 1: (0.1, 0.2, 0.7).
PROBS = [[[[0.7, 0.1]], [[0.1, 0.2]], [[0.2, 0.7]]]]
SAL = torch.tensor([[[[1.0, 0.0]]]])


def test_eps_loss_hand_computed_both_present():
    maps = maps_from_probs(PROBS)
    loss, fg, bg, est = eps_loss(maps, SAL, torch.tensor([[1.0, 1.0]]), tau=0.4, lam=0.5)
    # round(P_0) = (1, 0) overlaps round(S) = (1, 0): O_0 = 1/(1+1e-4) > τ → foreground.
    # round(P_1) = (0, 0): O_1 = 0 → background group.
    # M_fg = P_0 = (0.7, 0.1); M_bg = P_1 + P_bg = (0.3, 0.9)
    # Ŝ = 0.5·M_fg + 0.5·(1 − M_bg) = (0.7, 0.1); loss = (0.3² + 0.1²)/2 = 0.05
    assert fg.flatten().tolist() == pytest.approx([0.7, 0.1], abs=1e-6)
    assert bg.flatten().tolist() == pytest.approx([0.3, 0.9], abs=1e-6)
    assert est.flatten().tolist() == pytest.approx([0.7, 0.1], abs=1e-6)
    assert loss.item() == pytest.approx(0.05, abs=1e-6)


def test_eps_loss_hand_computed_absent_class_and_lambda():
    maps = maps_from_probs(PROBS)
    # class 1 absent: it joins neither group, M_bg = P_bg = (0.2, 0.7)
    loss, fg, bg, est = eps_loss(maps, SAL, torch.tensor([[1.0, 0.0]]), tau=0.4, lam=0.5)
    assert bg.flatten().tolist() == pytest.approx([0.2, 0.7], abs=1e-6)
    assert loss.item() == pytest.approx(((1 - 0.75) ** 2 + 0.2 ** 2) / 2, abs=1e-6)
    # λ = 0.9: Ŝ = 0.9·(0.7, 0.1) + 0.1·(0.7, 0.1) with both present → still (0.7, 0.1)
    loss, *_ , est = eps_loss(maps, SAL, torch.tensor([[1.0, 1.0]]), tau=0.4, lam=0.9)
    assert est.flatten().tolist() == pytest.approx([0.9 * 0.7 + 0.1 * 0.7, 0.9 * 0.1 + 0.1 * 0.1], abs=1e-6)


def test_eps_loss_hand_computed_where_lambda_matters():
    """fg ≠ 1 − bg (class 1 absent: its probability is in neither map), so λ weighs two different
    estimates and swapping λ and 1 − λ changes the loss."""
    maps = maps_from_probs(PROBS)
    loss, fg, bg, est = eps_loss(maps, SAL, torch.tensor([[1.0, 0.0]]), tau=0.4, lam=0.8)
    # O_0 = 1/(1+1e-4) > τ: class 0 in the foreground; class 1 absent; the background map alone:
    # M_fg = P_0 = (0.7, 0.1);  M_bg = P_bg = (0.2, 0.7), so 1 − M_bg = (0.8, 0.3) ≠ M_fg
    # Ŝ = 0.8·M_fg + 0.2·(1 − M_bg) = (0.56 + 0.16, 0.08 + 0.06) = (0.72, 0.14)
    # L = ((0.72 − 1)² + (0.14 − 0)²) / 2 = (0.0784 + 0.0196) / 2 = 0.049
    # (λ and 1 − λ swapped: Ŝ = 0.2·M_fg + 0.8·(1 − M_bg) = (0.78, 0.26), L = (0.0484 + 0.0676) / 2 = 0.058)
    assert fg.flatten().tolist() == pytest.approx([0.7, 0.1], abs=1e-6)
    assert bg.flatten().tolist() == pytest.approx([0.2, 0.7], abs=1e-6)
    assert est.flatten().tolist() == pytest.approx([0.72, 0.14], abs=1e-6)
    assert loss.item() == pytest.approx(0.049, abs=1e-6)


def test_map_off_the_salient_region_moves_to_background():
    # 4×4 maps, salient region = right half. Class 0 fires on the left half, class 1 on the right.
    maps = torch.full((1, 3, 4, 4), -5.0)
    maps[0, 0, :, :2] = 5.0
    maps[0, 1, :, 2:] = 5.0
    sal = torch.zeros(1, 1, 4, 4)
    sal[..., 2:] = 1.0
    labels = torch.tensor([[1.0, 1.0]])
    probs = torch.softmax(maps, 1)
    overlap = overlap_ratios(probs, sal)
    assert overlap[0, 0].item() == pytest.approx(0.0) and overlap[0, 1].item() == pytest.approx(1.0, abs=1e-3)
    fg, bg = select_maps(probs, sal, labels, tau=0.4)
    assert fg.tolist() == [[False, True]] and bg.tolist() == [[True, False]]
    _, fg_map, bg_map, _ = eps_loss(maps, sal, labels, tau=0.4, lam=0.5)
    # the left half (class 0, off the saliency) is background, the right half foreground
    assert fg_map[0, 0, :, 2:].min() > 0.99 and fg_map[0, 0, :, :2].max() < 0.01
    assert bg_map[0, 0, :, :2].min() > 0.99
    # partial overlap: class 0 covering the whole map overlaps S on half of it → O = 0.5
    maps2 = torch.full((1, 3, 4, 4), -5.0)
    maps2[0, 0] = 5.0
    o = overlap_ratios(torch.softmax(maps2, 1), sal)[0, 0].item()
    assert o == pytest.approx(0.5, abs=1e-4)
    assert select_maps(torch.softmax(maps2, 1), sal, labels, tau=0.4)[0][0, 0]
    assert not select_maps(torch.softmax(maps2, 1), sal, labels, tau=0.6)[0][0, 0]


def test_saliency_is_resized_to_the_map_size_and_shapes_checked():
    maps = torch.randn(2, 4, 4, 4)
    sal = torch.full((2, 1, 16, 16), 0.25)
    loss, fg, bg, est = eps_loss(maps, sal, torch.ones(2, 3), tau=0.4, lam=0.5)
    assert fg.shape == bg.shape == est.shape == (2, 1, 4, 4)
    expected = ((0.5 * fg + 0.5 * (1 - bg) - 0.25) ** 2).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    with pytest.raises(ValueError, match=r"^eps_loss: maps \(2, 4, 4, 4\) and labels \(2, 4\) do not match "
                                         r"\(expected maps \(N, C\+1, h, w\) and labels \(N, C\)\)$"):
        eps_loss(maps, sal, torch.ones(2, 4), tau=0.4, lam=0.5)


def test_resize_saliency_nearest_bilinear_and_same_size():
    sal = torch.tensor([[[[0.0, 1.0], [0.0, 1.0]]]])
    # bilinear, align_corners False: output x samples input x = (x + 0.5)/2 − 0.5 = −0.25, 0.25, 0.75, 1.25
    # (clamped to 0..1): 0, 0.25, 0.75, 1
    assert resize_saliency(sal, (2, 4))[0, 0].tolist() == [[0.0, 0.25, 0.75, 1.0]] * 2
    assert resize_saliency(sal, (2, 4), "nearest")[0, 0].tolist() == [[0.0, 0.0, 1.0, 1.0]] * 2
    assert resize_saliency(sal, (2, 2)) is sal  # already the map size: untouched
    row = torch.tensor([[[[1.0, 0.0, 0.0, 0.0]]]])
    # downsampling 4 → 2: nearest takes inputs 0 and 2; bilinear samples x = 0.5, 2.5 (no antialias)
    assert resize_saliency(row, (1, 2), "nearest").flatten().tolist() == [1.0, 0.0]
    assert resize_saliency(row, (1, 2), "bilinear").flatten().tolist() == [0.5, 0.0]


def test_overlap_ratio_has_the_papers_epsilon():
    probs = torch.softmax(maps_from_probs(PROBS), 1)
    # round(P_0) = (1, 0), round(S) = (1, 0): O_0 = 1 / (1 + 1e-4); round(P_1) = (0, 0): O_1 = 0 / 1e-4
    assert overlap_ratios(probs, SAL)[0].tolist() == pytest.approx([1 / (1 + 1e-4), 0.0], rel=1e-7, abs=1e-9)


def test_overlap_equal_to_tau_is_background():
    """The paper's rule: foreground when O_i > τ, background group when O_i ≤ τ (so at O_i = τ)."""
    probs = torch.softmax(maps_from_probs(PROBS), 1)
    tau = overlap_ratios(probs, SAL)[0, 0].item()  # O_0 itself
    fg, bg = select_maps(probs, SAL, torch.tensor([[1.0, 0.0]]), tau=tau)
    assert fg.tolist() == [[False, False]] and bg.tolist() == [[True, False]]


def test_skip_unclaimed_is_per_image_and_per_class():
    """3 classes, 2 images: a present class is left out only in the image where its own rounded map
    is empty (class 1 in image 0), not because another class or another image claims pixels."""
    p = torch.zeros(2, 4, 1, 2)
    p[0, 0] = torch.tensor([[0.7, 0.1]])   # image 0: class 0 claims pixel 0
    p[0, 1] = torch.tensor([[0.2, 0.2]])   #          class 1 present, claims nothing
    p[0, 2] = torch.tensor([[0.05, 0.6]])  #          class 2 claims pixel 1
    p[1, 1] = torch.tensor([[0.8, 0.8]])   # image 1: class 1 claims both pixels
    p[:, 3] = 1 - p[:, :3].sum(1)          # background
    sal = torch.tensor([[[[1.0, 1.0]]], [[[1.0, 1.0]]]])
    labels = torch.tensor([[1.0, 1.0, 1.0], [0.0, 1.0, 0.0]])
    fg, bg = select_maps(p, sal, labels, tau=0.4, skip_unclaimed=True)
    assert fg.tolist() == [[True, False, True], [False, True, False]]
    assert not bg.any()
    fg, bg = select_maps(p, sal, labels, tau=0.4)  # the paper's rule: class 1 of image 0 → background
    assert fg.tolist() == [[True, False, True], [False, True, False]]
    assert bg.tolist() == [[False, True, False], [False, False, False]]


class MapsNet(torch.nn.Module):
    """A classifier stand-in returning fixed maps (C class maps, then eps's background map); logits = GAP
    of the C class maps."""

    def __init__(self, maps, num_classes=2):
        super().__init__()
        self.maps, self.num_classes = maps, num_classes

    def forward(self, image):
        return self.maps

    def logits(self, maps):
        return maps[:, : self.num_classes].mean(dim=(2, 3))


class Wrapped(torch.nn.Module):
    """What the loop hands a step under DDP: the net is `.module`."""

    def __init__(self, net):
        super().__init__()
        self.module = net

    def forward(self, image):
        return self.module(image)


def soft_margin(logits, labels):
    """Multi-label soft margin written out: −mean over classes and images of y·log σ(x) + (1 − y)·log σ(−x)."""
    terms = [y * math.log(1 / (1 + math.exp(-x))) + (1 - y) * math.log(1 / (1 + math.exp(x)))
             for xs, ys in zip(logits, labels) for x, y in zip(xs, ys)]
    return -sum(terms) / len(terms)


def test_eps_step_hand_computed():
    """eps_step with the configured τ, λ, skip_unclaimed, nearest saliency resize and warm-up.

    Image A (the 1×2 case above, both classes present): class 1's map rounds to nothing, so
    skip_unclaimed leaves it out: M_fg = (0.7, 0.1), M_bg = P_bg = (0.2, 0.7),
    Ŝ = 0.8·(0.7, 0.1) + 0.2·(0.8, 0.3) = (0.72, 0.14) vs S = (1, 0): squared errors 0.0784, 0.0196.
    Image B (class 1 only, P = (0.1, 0.8, 0.1) at both pixels, S = (1, 1)): O_1 = 2/(2 + 1e-4) → fg,
    Ŝ = 0.8·0.8 + 0.2·(1 − 0.1) = 0.82: squared errors 0.0324, 0.0324.
    L_sal = (0.0784 + 0.0196 + 0.0324 + 0.0324) / 4 = 0.0407.
    The saliency comes at 1×4, (1, 0, 0, 0) and (1, 1, 1, 1): nearest gives (1, 0) and (1, 1); bilinear
    would give (0.5, 0), whose rounding drops class 0 from the foreground.
    Selection rates: class 0 is present in A and in the foreground there: 1/1; class 1 is present in
    A (left out) and B (foreground): 1/2.
    """
    maps = torch.cat([maps_from_probs(PROBS), maps_from_probs([[[[0.1, 0.1]], [[0.8, 0.8]], [[0.1, 0.1]]]])])
    batch = {"image": torch.zeros(2, 3, 1, 2), "label": torch.tensor([[1.0, 1.0], [0.0, 1.0]]),
             "saliency": torch.tensor([[[[1.0, 0.0, 0.0, 0.0]]], [[[1.0, 1.0, 1.0, 1.0]]]])}
    section = {"tau": 0.4, "lam": 0.8, "sal_warmup": 3, "skip_unclaimed": True, "saliency_resize": "nearest"}
    step = eps_step(2, EpsSettings(**section), ["red", "blue"])
    net = MapsNet(maps)
    l_cls = soft_margin(net.logits(maps).tolist(), batch["label"].tolist())
    for model in (net, Wrapped(net)):
        out = step(model, {**batch, "_step": 3})
        assert out["sal"].item() == pytest.approx(0.0407, abs=1e-6)
        assert out["cls"].item() == pytest.approx(l_cls, rel=1e-5)
        assert out["loss"].item() == pytest.approx(l_cls + 0.0407, rel=1e-5)
        assert out["fg_red"].item() == 1.0 and out["fg_blue"].item() == 0.5
    # before the warm-up ends only L_cls trains; without a step (outside the loop) L_sal is on
    assert step(net, {**batch, "_step": 2})["loss"].item() == pytest.approx(l_cls, rel=1e-5)
    assert step(net, batch)["loss"].item() == pytest.approx(l_cls + 0.0407, rel=1e-5)
    # a class absent from the whole batch has no rate
    only_red = step(net, {**batch, "label": torch.tensor([[1.0, 0.0], [1.0, 0.0]])})
    assert math.isnan(only_red["fg_blue"].item()) and only_red["fg_red"].item() == 0.5
    cam = cam_step(2, {}, ["red", "blue"])(Wrapped(MapsNet(maps[:, :2])), batch)
    assert set(cam) == {"loss", "cls"} and cam["cls"].item() == pytest.approx(l_cls, rel=1e-5)


def test_cls_gradients_reach_only_class_maps_and_sal_gradients_reach_background():
    torch.manual_seed(0)
    model = build_classifier(CLASSIFIERS["eps"], num_classes=3, backbone="small", width=4)
    x = torch.randn(2, 3, 16, 16)
    labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    maps = model(x)
    maps.retain_grad()
    classification_loss(model.logits(maps), labels).backward()
    assert maps.grad[:, 3].abs().max() == 0 and maps.grad[:, :3].abs().max() > 0
    assert model.head.weight.grad[3].abs().max() == 0 and model.head.weight.grad[:3].abs().max() > 0
    model.zero_grad()
    maps = model(x)
    sal = torch.rand(2, 1, 16, 16)
    eps_loss(maps, sal, labels, tau=0.4, lam=0.5)[0].backward()
    assert model.head.weight.grad[3].abs().max() > 0


def test_small_cnn_receptive_field_and_stride():
    net = SmallCnn(width=2).eval()
    for m in net.modules():  # all-positive weights keep every ReLU open: gradient support = RF
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.constant_(m.weight, 0.1)
    x = torch.ones(1, 3, 64, 64, requires_grad=True)
    y = net(x)
    assert y.shape == (1, 8, 16, 16) and net.output_stride == 4
    y[0, 0, 8, 8].backward()
    support = (x.grad[0, 0].abs() > 0).nonzero()
    extent = (support.max(0).values - support.min(0).values + 1).tolist()
    assert extent == [21, 21]


def test_resnet_output_stride_8_and_weights_from_file(tmp_path):
    import torchvision

    torch.manual_seed(0)
    ref = torchvision.models.resnet50(weights=None)
    torch.save(ref.state_dict(), tmp_path / "r50.pth")
    net = build_backbone("resnet50", str(tmp_path / "r50.pth")).eval()
    assert torch.equal(net.stem[0].weight, ref.conv1.weight)
    assert torch.equal(net.layer4[2].conv3.weight, ref.layer4[2].conv3.weight)
    with torch.no_grad():
        assert net(torch.randn(1, 3, 64, 64)).shape == (1, 2048, 8, 8)
    with pytest.raises(BadInputError, match="BOGUS"):
        build_backbone("resnet50", "BOGUS")  # not a file, not an enum name: no download attempted
    with pytest.raises(BadInputError, match="missing.pth"):
        build_backbone("resnet50", str(tmp_path / "missing.pth"))


def test_cam_head_and_param_groups():
    model = build_classifier(CLASSIFIERS["cam"], num_classes=5, backbone="small", width=4)
    maps = model(torch.randn(1, 3, 32, 32))
    assert maps.shape == (1, 5, 8, 8)
    assert torch.allclose(model.logits(maps), maps.mean(dim=(2, 3)))
    groups = model.param_groups(lr=0.01, weight_decay=5e-4, head_lr_mult=10)
    assert groups[1]["lr"] == pytest.approx(0.1) and groups[1]["params"][0] is model.head.weight
    assert model.head.bias is None and not math.isnan(maps.sum().item())


def test_skip_unclaimed_leaves_empty_maps_out_of_both_groups():
    """A present class whose softmax map wins no pixel: background by the paper's rule, neither
    group with skip_unclaimed, and then L_sal raises its probability on the salient object."""
    from wsss.methods.eps_loss import eps_loss, select_maps

    maps = torch.zeros(1, 3, 2, 2)  # 2 classes + background, all equal: nothing rounds to 1
    maps[0, 2] = 0.5                # background slightly ahead everywhere
    labels = torch.tensor([[1.0, 0.0]])
    sal = torch.ones(1, 1, 2, 2)
    probs = torch.softmax(maps, 1)
    fg, bg = select_maps(probs, sal, labels, 0.2)
    assert not fg.any() and bg[0, 0]
    fg, bg = select_maps(probs, sal, labels, 0.2, skip_unclaimed=True)
    assert not fg.any() and not bg.any()
    for skip, sign in ((False, 1.0), (True, -1.0)):
        m = maps.clone().requires_grad_(True)
        loss, *_ = eps_loss(m, sal, labels, 0.2, 0.5, skip_unclaimed=skip)
        loss.backward()
        # gradient descent moves the class-0 map by -grad: down (paper rule) or up (skip)
        assert (sign * m.grad[0, 0] > 0).all()
