"""DeepLab-LargeFOV's VGG-16 (Chen et al., ICLR 2015: DeepLab-v1 as released), the network of the
paper's VGG-16 row, as `deeplab.backbone: vgg16` (with `deeplab.variant: v1`).

Layout (the DeepLab-LargeFOV train.prototxt, as its PyTorch ports write it out):
- conv1_1 .. conv5_3: 3x3 convs with biases, each followed by a ReLU; 64/128/256/512/512 channels;
- pool1 .. pool3: 3x3 max pooling, stride 2, pad 1; Caffe rounds pooled sizes up, hence ceil_mode;
- pool4: 3x3 max pooling, stride 1, pad 1; conv5_x dilated by 2 (pad 2); pool5 as pool4;
- pool5a: 3x3 average pooling, stride 1, pad 1, padding counted in the average (Caffe's AVE);
- fc6: 3x3 conv dilated by 12 (pad 12), 1024 channels, ReLU, dropout 0.5;
- fc7: 1x1 conv, 1024 channels, ReLU, dropout 0.5;
- fc8: the 1x1 classifier: DeepLab's head (`classifier` in wsss.models.deeplab), not in this module.
Output stride 8: a 321-px crop gives 41x41 logits. Dropout is Caffe's: element-wise, scaled in training.

The init is DeepLab's ImageNet VGG-16 (vgg16_20M.caffemodel: fc6/fc7 already reduced to 1024 channels
and 3x3 / 1x1 kernels). It loads from that file (wsss.models.caffemodel) or from a PyTorch state dict
under the Caffe layer names (`conv1_1.weight`, `conv1_1.bias`, ..., `fc7.bias`, an optional `fc8*`),
which `largefov_key_map` puts under this project's names.

Like the Caffe ResNet (wsss.models.caffe_resnet), the input adapter is part of the backbone: it turns
the datasets' ImageNet-normalised RGB into BGR 0..255 minus DeepLab's mean, what the Caffe weights expect.
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn

from wsss.models.caffe_resnet import CaffeInput

# (convs, channels, pool stride, dilation of the convs) per stage.
STAGES = ((2, 64, 2, 1), (2, 128, 2, 1), (3, 256, 2, 1), (3, 512, 1, 1), (3, 512, 1, 2))
FC6_DILATION = 12
FC_CHANNELS = 1024
DROPOUT = 0.5


def layer_shapes() -> dict[str, tuple[int, int, int]]:
    """Layer name -> (in channels, out channels, kernel size) of every convolution of the backbone."""
    shapes, cin = {}, 3
    for stage, (n, cout, _, _) in enumerate(STAGES, 1):
        for i in range(1, n + 1):
            shapes[f"conv{stage}_{i}"] = (cin, cout, 3)
            cin = cout
    shapes["fc6"] = (cin, FC_CHANNELS, 3)
    shapes["fc7"] = (FC_CHANNELS, FC_CHANNELS, 1)
    return shapes


class VGG16LargeFOV(nn.Module):
    """VGG-16 conv1_1 .. fc7 of DeepLab-LargeFOV, output stride 8, 1024 channels, with its input adapter."""

    def __init__(self):
        super().__init__()
        self.input = CaffeInput()
        dilation = {f"conv{s}_{i}": d for s, (n, _, _, d) in enumerate(STAGES, 1) for i in range(1, n + 1)}
        dilation.update(fc6=FC6_DILATION, fc7=1)
        for name, (cin, cout, k) in layer_shapes().items():
            pad = dilation[name] * (k // 2)
            self.add_module(name, nn.Conv2d(cin, cout, k, padding=pad, dilation=dilation[name], bias=True))
        self.pools = nn.ModuleList(nn.MaxPool2d(3, stride, padding=1, ceil_mode=True) for _, _, stride, _ in STAGES)
        self.pool5a = nn.AvgPool2d(3, 1, padding=1, count_include_pad=True)
        self.drop6, self.drop7 = nn.Dropout(DROPOUT), nn.Dropout(DROPOUT)
        self.out_channels = FC_CHANNELS

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input(x)
        for stage, (n, _, _, _) in enumerate(STAGES, 1):
            for i in range(1, n + 1):
                x = F.relu(getattr(self, f"conv{stage}_{i}")(x), inplace=True)
            x = self.pools[stage - 1](x)
        x = self.drop6(F.relu(self.fc6(self.pool5a(x)), inplace=True))
        return self.drop7(F.relu(self.fc7(x), inplace=True))


_PARAM_KEY = re.compile(r"(conv[1-5]_[1-3]|fc6|fc7|fc8\w*)\.(weight|bias)")


def is_largefov_layout(keys) -> bool:
    return "conv1_1.weight" in set(keys) and "conv5_3.weight" in set(keys)


def largefov_key_map(sd: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The Caffe layer names of DeepLab-LargeFOV (a .caffemodel read by wsss.models.caffemodel, or a
    state dict converted from one) -> this project's names; returns (mapped state dict, keys dropped).

    - `conv{s}_{i}.{weight,bias}`, `fc6.*`, `fc7.*` -> `backbone.<layer>.*`;
    - one `fc8*` layer (fc8, fc8_voc12, ...: the classifier of a trained model) -> `classifier.*`;
    - a tensor whose element count matches the layer is reshaped to it: Caffe keeps biases as
      (1, 1, 1, C) in old files and a fully connected fc6/fc7 as (1, 1, out, in*k*k), both in the
      row-major order of the conv's (out, in, k, k);
    - any other key (a layer this network lacks, a second fc8) keeps its name, so a strict load
      reports it as unexpected.
    """
    shapes = layer_shapes()
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        m = _PARAM_KEY.fullmatch(key)
        if m is None:
            out[key] = value
            continue
        layer, kind = m.groups()
        if layer.startswith("fc8"):
            target = f"classifier.{kind}"
            shape = (-1,) if kind == "bias" else (-1, FC_CHANNELS, 1, 1)
            if target in out or (kind == "weight" and value.numel() % FC_CHANNELS):
                out[key] = value
                continue
        else:
            target = f"backbone.{layer}.{kind}"
            cin, cout, k = shapes[layer]
            shape = (cout,) if kind == "bias" else (cout, cin, k, k)
            if value.numel() != torch.Size(shape).numel():
                out[target] = value  # the loader reports the shape
                continue
        out[target] = value.reshape(shape)
    return out, []
