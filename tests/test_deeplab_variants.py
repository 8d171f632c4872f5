"""deeplab.variant v2 / v1 against deeplab-pytorch's own module structure.

`RefDeepLab` / `RefMSC` below rebuild deeplab-pytorch's DeepLabV2, DeepLabV1 and MSC
(libs/models/{resnet,deeplabv2,deeplabv1,msc}.py) module by module, so their `state_dict()` has the
published key layout (layer1.conv1.conv.weight, layer2.block1.reduce.bn.running_var, aspp.c0.bias,
fc.weight, base.* under MSC) and their forward is the published one. With random weights, loading
that state dict into this project's DeepLab must give the same logits: single scale and MSC, v2 and v1.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import wsss.stages.train_segmentation as seg
from wsss.core.images import normalize
from wsss.models.caffe_resnet import CAFFE_MEAN_BGR
from wsss.models.deeplab import DeepLab, DeepLabModelConfig, build_deeplab, load_init_weights

torch.set_num_threads(2)

N_BLOCKS = (3, 4, 23, 3)  # DeepLabV2_ResNet101_MSC / DeepLabV1_ResNet101
RATES = [6, 12, 18, 24]
SIZE = 41  # odd, so that Caffe's ceil-mode pooling and MSC's rounding both matter


# --- deeplab-pytorch's structure, rebuilt ---------------------------------------------------------------------
class RefConvBnReLU(nn.Sequential):
    def __init__(self, cin, cout, k, stride, pad, dil, relu=True):
        super().__init__()
        self.add_module("conv", nn.Conv2d(cin, cout, k, stride, pad, dil, bias=False))
        self.add_module("bn", nn.BatchNorm2d(cout, eps=1e-5))
        if relu:
            self.add_module("relu", nn.ReLU())


class RefBottleneck(nn.Module):
    def __init__(self, cin, cout, stride, dil, downsample):
        super().__init__()
        mid = cout // 4
        self.reduce = RefConvBnReLU(cin, mid, 1, stride, 0, 1)
        self.conv3x3 = RefConvBnReLU(mid, mid, 3, 1, dil, dil)
        self.increase = RefConvBnReLU(mid, cout, 1, 1, 0, 1, relu=False)
        self.shortcut = RefConvBnReLU(cin, cout, 1, stride, 0, 1, relu=False) if downsample else nn.Identity()

    def forward(self, x):
        return F.relu(self.increase(self.conv3x3(self.reduce(x))) + self.shortcut(x))


class RefDeepLab(nn.Sequential):
    """DeepLabV2 (head "aspp": c0..c3, summed) or DeepLabV1 (head "fc": one 1x1 conv)."""

    def __init__(self, n_classes, variant):
        super().__init__()
        stem = nn.Sequential()
        stem.add_module("conv1", RefConvBnReLU(3, 64, 7, 2, 3, 1))
        stem.add_module("pool", nn.MaxPool2d(3, 2, 1, ceil_mode=True))
        self.add_module("layer1", stem)
        cin = 64
        for i, (n, cout, stride, dil) in enumerate(zip(N_BLOCKS, (256, 512, 1024, 2048), (1, 2, 1, 1), (1, 1, 2, 4))):
            layer = nn.Sequential()
            for b in range(n):
                layer.add_module(f"block{b + 1}", RefBottleneck(cin if b == 0 else cout, cout, stride if b == 0 else 1,
                                                                dil, b == 0))
            self.add_module(f"layer{i + 2}", layer)
            cin = cout
        if variant == "v2":
            self.add_module("aspp", RefASPP(2048, n_classes, RATES))
        else:
            self.add_module("fc", nn.Conv2d(2048, n_classes, 1))

    def freeze_bn(self):
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()


class RefASPP(nn.Module):
    def __init__(self, cin, cout, rates):
        super().__init__()
        for i, r in enumerate(rates):
            self.add_module(f"c{i}", nn.Conv2d(cin, cout, 3, 1, padding=r, dilation=r, bias=True))

    def forward(self, x):
        return sum(c(x) for c in self.children())


class RefMSC(nn.Module):
    """Scales 0.5 and 0.75 after the original; training: [orig, 0.5, 0.75 (own sizes), max]; eval: max."""

    def __init__(self, base, scales=(0.5, 0.75)):
        super().__init__()
        self.base, self.scales = base, scales

    def forward(self, x):
        logits = self.base(x)
        pyramid = [self.base(F.interpolate(x, scale_factor=p, mode="bilinear", align_corners=False))
                   for p in self.scales]
        h, w = logits.shape[-2:]
        every = [logits] + [F.interpolate(p, size=(h, w), mode="bilinear", align_corners=False) for p in pyramid]
        fused = torch.max(torch.stack(every), dim=0)[0]
        return [logits] + pyramid + [fused] if self.training else fused


def randomise(model: nn.Module, seed: int) -> nn.Module:
    """Random BN statistics and affine terms (a tame residual branch keeps 33 blocks finite), random heads."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_((0.5 + torch.rand(m.num_features, generator=g)) * (0.2 if "increase" in name else 1))
                m.bias.copy_(0.1 * torch.randn(m.num_features, generator=g))
                m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
            elif isinstance(m, nn.Conv2d):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (1.0 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
    return model


@pytest.fixture(scope="module")
def refs():
    """deeplab-pytorch models with random weights: v2 and v1 share the backbone (the same init, EPS issue #6)."""
    torch.manual_seed(0)
    v2 = randomise(RefDeepLab(21, "v2"), seed=1).eval()
    v1 = RefDeepLab(21, "v1").eval()
    fc = randomise(nn.Conv2d(2048, 21, 1), seed=2)
    v1.load_state_dict({**{k: v for k, v in v2.state_dict().items() if not k.startswith("aspp.")},
                        "fc.weight": fc.weight.detach(), "fc.bias": fc.bias.detach()})
    return {"v2": v2, "v1": v1}


@pytest.fixture(scope="module")
def image():
    pixels = np.random.default_rng(0).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    bgr = torch.from_numpy(pixels[..., ::-1].astype(np.float32) - np.array(CAFFE_MEAN_BGR, np.float32))
    return normalize(pixels)[None], bgr.permute(2, 0, 1)[None].contiguous()  # (ours, deeplab-pytorch's input)


def ours(variant: str, multi_scale: bool, classes: int = 21) -> DeepLab:
    return DeepLab(classes, DeepLabModelConfig(backbone="resnet101_caffe", variant=variant, aspp_rates=RATES,
                                               multi_scale=multi_scale, msc_scales=[1.0, 0.75, 0.5], freeze_bn=True))


def close(a, b):
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * b.abs().max().item())


@pytest.mark.parametrize("variant", ["v2", "v1"])
def test_single_scale_file_loads_strictly_and_gives_deeplab_pytorch_logits(tmp_path, refs, image, variant):
    ref = refs[variant]
    torch.save(ref.state_dict(), tmp_path / "base.pth")  # no prefix, as deeplabv1_resnet101-coco.pth
    model = ours(variant, multi_scale=False).eval()
    counts = load_init_weights(model, tmp_path / "base.pth")
    assert counts == {"loaded": sum(not k.endswith("num_batches_tracked") for k in ref.state_dict()), "skipped": 0}
    with torch.no_grad():
        out, expected = model(image[0]), ref(image[1])
    assert out.shape == expected.shape == (1, 21, 6, 6)
    close(out, expected)


@pytest.mark.parametrize("variant", ["v2", "v1"])
def test_msc_matches_deeplab_pytorch_in_eval_and_training(tmp_path, refs, image, variant):
    msc = RefMSC(refs[variant])
    torch.save(msc.state_dict(), tmp_path / "msc.pth")  # base.* keys, as deeplabv2_resnet101_msc-*.pth
    model = ours(variant, multi_scale=True)
    load_init_weights(model, tmp_path / "msc.pth")
    with torch.no_grad():
        msc.train()
        msc.base.freeze_bn()  # deeplab-pytorch's training keeps the COCO BN statistics: its eval max is theirs[-1]
        theirs = msc(image[1])
        close(model.eval()(image[0]), theirs[-1])
        mine = model.train()(image[0])
    # Ours: [1, 0.75, 0.5, max], the smaller scales upsampled to scale 1's size (the loss then upsamples
    # every branch to the mask); theirs: [1, 0.5, 0.75, max], each at its own size.
    assert len(mine) == len(theirs) == 4
    size = theirs[0].shape[-2:]
    up = [F.interpolate(t, size=size, mode="bilinear", align_corners=False) for t in theirs[1:3]]
    for a, b in zip(mine, [theirs[0], up[1], up[0], theirs[3]]):
        close(a, b)


def test_coco_init_loads_the_v1_classifier_only_where_it_fits(tmp_path, refs):
    coco = RefDeepLab(91, "v1")  # deeplabv1_resnet101-coco.pth: DeepLabV1 with 91 COCO classes
    coco.load_state_dict({**{k: v for k, v in refs["v1"].state_dict().items() if not k.startswith("fc.")},
                          **{f"fc.{k}": v for k, v in randomise(nn.Conv2d(2048, 91, 1), 3).state_dict().items()}})
    torch.save(coco.state_dict(), tmp_path / "deeplabv1_resnet101-coco.pth")
    backbone = sum(not k.endswith("num_batches_tracked") and not k.startswith("fc.") for k in coco.state_dict())
    voc = ours("v1", multi_scale=False)
    before = {k: v.clone() for k, v in voc.classifier.state_dict().items()}
    assert load_init_weights(voc, tmp_path / "deeplabv1_resnet101-coco.pth") == {"loaded": backbone, "skipped": 2}
    assert all(torch.equal(v, before[k]) for k, v in voc.classifier.state_dict().items())
    torch.testing.assert_close(voc.backbone.layer4[2].conv3.weight, coco.layer5.block3.increase.conv.weight)
    same = ours("v1", multi_scale=False, classes=91)
    assert load_init_weights(same, tmp_path / "deeplabv1_resnet101-coco.pth") == {"loaded": backbone + 2,
                                                                                   "skipped": 0}
    assert torch.equal(same.classifier.weight, coco.fc.weight)
    v2 = ours("v2", multi_scale=False)  # the paper's v2 from the same file: its 1x1 fc is no ASPP
    assert load_init_weights(v2, tmp_path / "deeplabv1_resnet101-coco.pth") == {"loaded": backbone, "skipped": 2}


def test_v1_param_groups_put_the_classifier_at_10x_and_20x():
    model = ours("v1", multi_scale=False)
    groups = model.param_groups()
    assert groups["head_weight"] == [model.classifier.weight] and groups["head_bias"] == [model.classifier.bias]
    assert not groups["backbone_bias"] and len(groups["backbone"]) == len(list(model.backbone.parameters()))
    opt = seg.build_optimizer(model, seg.SegTrainConfig(lr=1e-3))
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([1e-3, 1e-2, 2e-2])
    assert [g["weight_decay"] for g in opt.param_groups] == pytest.approx([5e-4, 5e-4, 0.0])
    assert model.classifier.kernel_size == (1, 1) and not hasattr(model, "aspp")
    head = model.classifier.weight.detach()
    assert not model.classifier.bias.detach().any() and 0.005 < float(head.std()) < 0.015  # DeepLab's init


@pytest.mark.parametrize("backbone,multi_scale", [("resnet101_caffe", False), ("vgg16", True)])
def test_build_deeplab_v1_trains_one_step_on_the_cpu(backbone, multi_scale):
    torch.manual_seed(0)
    cfg = DeepLabModelConfig(backbone=backbone, variant="v1", multi_scale=multi_scale)
    model = build_deeplab(3, cfg).train()
    opt = seg.build_optimizer(model, seg.SegTrainConfig(lr=1e-3))
    mask = torch.randint(0, 3, (2, 33, 33))
    mask[:, :4] = 255
    outs = model(torch.randn(2, 3, 33, 33))
    outs = outs if multi_scale else [outs]
    assert len(outs) == (4 if multi_scale else 1) and all(o.shape == (2, 3, 5, 5) for o in outs)
    loss = seg.segmentation_loss(outs, mask)
    loss.backward()
    assert torch.isfinite(loss) and model.classifier.weight.grad.abs().sum() > 0
    before = model.classifier.weight.detach().clone()
    opt.step()
    assert not torch.equal(before, model.classifier.weight)


def test_vgg16_needs_v1():
    with pytest.raises(ValueError, match="variant: v1"):
        DeepLabModelConfig(backbone="vgg16", variant="v2")
    with pytest.raises(ValueError, match="deeplab.variant"):
        DeepLabModelConfig(variant="v3")
