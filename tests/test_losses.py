"""EPS loss on hand-computed cases, map selection, gradient routing; backbones and heads."""

from __future__ import annotations

import math

import pytest
import torch

from wsss.io import BadInputError
from wsss.losses import classification_loss, eps_loss, overlap_ratios, select_maps
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
    with pytest.raises(ValueError):
        eps_loss(maps, sal, torch.ones(2, 4), tau=0.4, lam=0.5)


def test_cls_gradients_reach_only_class_maps_and_sal_gradients_reach_background():
    torch.manual_seed(0)
    model = build_classifier("eps", num_classes=3, backbone="small", width=4)
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
    model = build_classifier("cam", num_classes=5, backbone="small", width=4)
    maps = model(torch.randn(1, 3, 32, 32))
    assert maps.shape == (1, 5, 8, 8)
    assert torch.allclose(model.logits(maps), maps.mean(dim=(2, 3)))
    groups = model.param_groups(lr=0.01, weight_decay=5e-4, head_lr_mult=10)
    assert groups[1]["lr"] == pytest.approx(0.1) and groups[1]["params"][0] is model.head.weight
    assert model.head.bias is None and not math.isnan(maps.sum().item())


def test_skip_unclaimed_leaves_empty_maps_out_of_both_groups():
    """A present class whose softmax map wins no pixel: background by the paper's rule, neither
    group with skip_unclaimed, and then L_sal raises its probability on the salient object."""
    from wsss.losses import eps_loss, select_maps

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
