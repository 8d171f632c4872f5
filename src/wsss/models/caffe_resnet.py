"""The Caffe ResNet-101 of DeepLab-v2 (Chen et al.), the network of the COCO-pretrained weights
the paper starts from, as `deeplab.backbone: resnet101_caffe`.

It differs from torchvision's ResNet-101 where the released weights need it:
- the stride of a downsampling bottleneck sits in its first 1x1 ("reduce") conv, not in the 3x3;
- the stem's 3x3 max pool rounds up (`ceil_mode=True`);
- every stage's first block has a projection shortcut (1x1 conv + BN), stride 1 ones included;
- BN eps 1e-5 (Caffe's, as deeplab-pytorch's conversion checks), frozen when pretrained;
- the input is BGR in 0..255 minus the Caffe mean, not divided by a std.

Layers 3 and 4 are dilated (2 and 4) instead of strided: output stride 8, 2048 channels.
Module names follow torchvision's (conv1/bn1, layerN.B.conv1..3/bn1..3, downsample.0/1), so the
project's key names stay one scheme; `caffe_key_map` translates deeplab-pytorch's layout.

`CaffeInput` is part of the backbone: the project's datasets feed ImageNet-normalised RGB
tensors, and the backbone turns them back into what the Caffe weights expect, so training and
inference code do not know which backbone they run.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from wsss.core.images import IMAGENET_MEAN, IMAGENET_STD

# deeplab-pytorch configs/voc12.yaml and cocostuff164k.yaml, IMAGE.MEAN (B, G, R order as fed).
CAFFE_MEAN_BGR = (104.008, 116.669, 122.675)

BLOCKS_101 = (3, 4, 23, 3)


class CaffeInput(nn.Module):
    """ImageNet-normalised RGB → BGR 0..255 minus the Caffe mean, exactly:
    out[c] = (x[2 - c] * std[2 - c] + mean[2 - c]) * 255 - caffe_mean_bgr[c].
    Per-channel affine, so it commutes with MSC's bilinear rescaling. Its constants are
    non-persistent buffers: they follow .to(device) but are not in the state dict."""

    def __init__(self):
        super().__init__()
        std = torch.tensor(IMAGENET_STD).flip(0) * 255.0  # BGR order
        mean = torch.tensor(IMAGENET_MEAN).flip(0) * 255.0
        self.register_buffer("scale", std.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("shift", (mean - torch.tensor(CAFFE_MEAN_BGR)).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flip(1) * self.scale + self.shift


class CaffeBottleneck(nn.Module):
    """1x1 reduce (carries the stride) → 3x3 (dilated) → 1x1 increase, + shortcut, ReLU."""

    def __init__(self, cin: int, cout: int, stride: int, dilation: int, projection: bool, norm):
        super().__init__()
        mid = cout // 4
        self.conv1 = nn.Conv2d(cin, mid, 1, stride, bias=False)
        self.bn1 = norm(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, 1, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = norm(mid)
        self.conv3 = nn.Conv2d(mid, cout, 1, bias=False)
        self.bn3 = norm(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), norm(cout))
                           if projection else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu(self.bn1(self.conv1(x)))
        h = self.relu(self.bn2(self.conv2(h)))
        h = self.bn3(self.conv3(h))
        return self.relu(h + (x if self.downsample is None else self.downsample(x)))


def _stage(n: int, cin: int, cout: int, stride: int, dilation: int, norm) -> nn.Sequential:
    return nn.Sequential(*(CaffeBottleneck(cin if i == 0 else cout, cout, stride if i == 0 else 1, dilation,
                                           i == 0, norm) for i in range(n)))


class CaffeResNetBackbone(nn.Module):
    """DeepLab-v2's Caffe ResNet (101 by default) at output stride 8, with its input adapter."""

    def __init__(self, norm, blocks: tuple[int, ...] = BLOCKS_101):
        super().__init__()
        self.input = CaffeInput()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, padding=3, bias=False)
        self.bn1 = norm(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, padding=1, ceil_mode=True)
        self.layer1 = _stage(blocks[0], 64, 256, 1, 1, norm)
        self.layer2 = _stage(blocks[1], 256, 512, 2, 1, norm)
        self.layer3 = _stage(blocks[2], 512, 1024, 1, 2, norm)
        self.layer4 = _stage(blocks[3], 1024, 2048, 1, 4, norm)
        self.out_channels = 2048

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(self.input(x)))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


_BRANCH = {"reduce": ("conv1", "bn1"), "conv3x3": ("conv2", "bn2"), "increase": ("conv3", "bn3"),
           "shortcut": ("downsample.0", "downsample.1")}
_BLOCK_KEY = re.compile(r"layer([2-5])\.block(\d+)\.(reduce|conv3x3|increase|shortcut)\.(conv|bn)\.(\w+)")
_STEM_KEY = re.compile(r"layer1\.conv1\.(conv|bn)\.(\w+)")
_ASPP_KEY = re.compile(r"aspp\.c(\d+)\.(weight|bias)")
_FC_KEY = re.compile(r"fc\.(weight|bias)")


def is_deeplab_pytorch_layout(keys) -> bool:
    return any(_STEM_KEY.fullmatch(k.removeprefix("base.")) for k in keys)


def caffe_key_map(sd: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Translate deeplab-pytorch's state dict of DeepLab-v2 or -v1 ResNet-101 into this project's key
    names; returns (mapped state dict, keys dropped). Layout (deeplab-pytorch: convert.py
    `translate_layer_name`, libs/models/resnet.py `_Stem`/`_ResLayer`/`_Bottleneck`/`_ConvBnReLU`,
    libs/models/deeplabv2.py `DeepLabV2`/`_ASPP`, libs/models/deeplabv1.py `DeepLabV1`,
    libs/models/msc.py `MSC`):

    - an optional `base.` prefix: the MSC wrapper (`MSC.base`) of DeepLabV2_ResNet101_MSC files
      (`deeplabv2_resnet101_msc-*.pth`); the COCO init file (`deeplabv1_resnet101-coco.pth`, a
      DeepLabV1 = the same ResNet + 1x1 `fc`) has none;
    - stem `layer1.conv1.conv.weight`, `layer1.conv1.bn.{weight,bias,running_mean,running_var,
      num_batches_tracked}` → `backbone.conv1.weight`, `backbone.bn1.*` (`layer1.pool` has no tensors);
    - stages `layer{2,3,4,5}.block{1..n}` (n = 3/4/23/3) → `backbone.layer{1,2,3,4}.{0..n-1}`,
      branches `reduce` / `conv3x3` / `increase` / `shortcut` (block1 only) each `.conv.weight`
      (no bias) + `.bn.*` → `conv1`/`bn1`, `conv2`/`bn2`, `conv3`/`bn3`, `downsample.0`/`downsample.1`;
    - ASPP `aspp.c{0..3}.{weight,bias}` (3x3, one per rate 6/12/18/24) → `aspp.branches.{i}.*`;
    - DeepLabV1's 1x1 classifier `fc.{weight,bias}` (91 COCO classes in the init file) →
      `classifier.*`, the head of `deeplab.variant: v1` (libs/models/deeplabv1.py);
    - dropped: `num_batches_tracked` (BatchNorm bookkeeping FrozenBatchNorm2d lacks).
    Any other key is kept under its name, so a strict load reports it as unexpected.
    """
    out, dropped = {}, []
    for key, value in sd.items():
        k = key.removeprefix("base.")
        if k.endswith("num_batches_tracked"):
            dropped.append(key)
        elif m := _FC_KEY.fullmatch(k):
            out[f"classifier.{m[1]}"] = value
        elif m := _STEM_KEY.fullmatch(k):
            out[f"backbone.{'conv1' if m[1] == 'conv' else 'bn1'}.{m[2]}"] = value
        elif m := _BLOCK_KEY.fullmatch(k):
            layer, block, branch, part, tensor = m.groups()
            name = _BRANCH[branch][part == "bn"]
            out[f"backbone.layer{int(layer) - 1}.{int(block) - 1}.{name}.{tensor}"] = value
        elif m := _ASPP_KEY.fullmatch(k):
            out[f"aspp.branches.{m[1]}.{m[2]}"] = value
        else:
            out[key] = value
    return out, dropped
