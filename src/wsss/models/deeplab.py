"""DeepLab-v2 (Chen et al., TPAMI 2017) as EPS trains it: a dilated ResNet (output stride 8)
and ASPP — four parallel 3x3 classifiers with dilation rates 6/12/18/24 whose logits are
summed — with optional multi-scale inputs (1, 0.75, 0.5) fused by a pixel-wise max, and
BatchNorm frozen (batches of 10 crops are too small to estimate its statistics).

`backbone: resnet101_caffe` is the Caffe ResNet-101 of the COCO-pretrained DeepLab-v2 the paper
starts from (wsss.models.caffe_resnet); `load_init_weights` reads deeplab-pytorch's conversion of it.

`backbone: small` builds a network of the same shape (a small dilated conv backbone + ASPP)
for the embedded 64-px benchmark, trained from scratch in seconds on a CPU.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from wsss.config.schema import schema_defaults
from wsss.core.io import BadInputError
from wsss.models.caffe_resnet import CaffeResNetBackbone, caffe_key_map, is_deeplab_pytorch_layout

log = logging.getLogger("wsss.deeplab")

BACKBONES = ("small", "resnet50", "resnet101", "resnet101_caffe")


@dataclass
@schema_defaults("deeplab")
class DeepLabModelConfig:
    """Defaults: the embedded 64-px setting; config/voc12.yaml has the paper's (resnet101, rates
    6/12/18/24, MSC, frozen BN)."""

    backbone: str
    aspp_rates: list[int]
    multi_scale: bool  # MSC: inputs at msc_scales, logits fused by max (training: loss on each)
    msc_scales: list[float]
    freeze_bn: bool  # True with pretrained weights: batches of 10 crops cannot estimate BN statistics
    width: int  # small backbone only: channels of its first stage
    small_output_stride: int  # small backbone only: 4 or 8 (64-px images leave 8x8 maps at 8)

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ValueError(f"deeplab.backbone must be one of {BACKBONES}, got {self.backbone!r}")
        if self.small_output_stride not in (4, 8):
            raise ValueError(f"deeplab.small_output_stride must be 4 or 8, got {self.small_output_stride}")
        if not self.aspp_rates:
            raise ValueError("deeplab.aspp_rates must name at least one rate")
        if self.msc_scales[0] != 1.0:
            raise ValueError("deeplab.msc_scales must start with 1.0 (the reference scale)")


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm with fixed statistics and affine parameters, all buffers (no gradient, no
    update): DeepLab-v2's frozen BN. Buffer names match nn.BatchNorm2d / torchvision's, so
    ImageNet ResNet state dicts load. Defined here: importing torchvision costs every job ~3 s."""

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        for name, fill in (("weight", 1.0), ("bias", 0.0), ("running_mean", 0.0), ("running_var", 1.0)):
            self.register_buffer(name, torch.full((num_features,), fill))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        shift = self.bias - self.running_mean * scale
        return x * scale[None, :, None, None] + shift[None, :, None, None]


def _conv_bn(cin: int, cout: int, norm, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, bias=False),
                         norm(cout), nn.ReLU(inplace=True))


class SmallBackbone(nn.Module):
    """Five 3x3 conv-BN-ReLU layers, two (or three) of stride 2, the last ones dilated (DeepLab's
    trick of keeping resolution while growing the receptive field)."""

    def __init__(self, width: int, output_stride: int, norm):
        super().__init__()
        w = width
        layers = [_conv_bn(3, w, norm), _conv_bn(w, w, norm, stride=2), _conv_bn(w, 2 * w, norm),
                  _conv_bn(2 * w, 2 * w, norm, stride=2)]
        if output_stride == 8:
            layers.append(_conv_bn(2 * w, 4 * w, norm, stride=2))
        else:
            layers.append(_conv_bn(2 * w, 4 * w, norm, dilation=2))
        layers.append(_conv_bn(4 * w, 4 * w, norm, dilation=2))
        self.body = nn.Sequential(*layers)
        self.out_channels = 4 * w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class ResNetBackbone(nn.Module):
    """torchvision ResNet-50/101 with layer3/layer4 dilated (output stride 8), without avgpool/fc."""

    def __init__(self, depth: int, norm):
        super().__init__()
        import torchvision

        net = getattr(torchvision.models, f"resnet{depth}")(
            weights=None, replace_stride_with_dilation=[False, True, True], norm_layer=norm)
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        self.out_channels = 2048

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class ASPP(nn.Module):
    """DeepLab-v2 ASPP: one dilated 3x3 classifier per rate, outputs summed."""

    def __init__(self, in_channels: int, num_classes: int, rates: list[int]):
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Conv2d(in_channels, num_classes, 3, padding=r, dilation=r, bias=True) for r in rates)
        for conv in self.branches:  # DeepLab-v2's initialisation of the new layers
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sum(branch(x) for branch in self.branches)


class DeepLabV2(nn.Module):
    def __init__(self, num_classes: int, cfg: DeepLabModelConfig):
        super().__init__()
        self.cfg = cfg
        norm = FrozenBatchNorm2d if cfg.freeze_bn else nn.BatchNorm2d
        if cfg.backbone == "small":
            self.backbone = SmallBackbone(cfg.width, cfg.small_output_stride, norm)
        elif cfg.backbone == "resnet101_caffe":  # expects ImageNet-normalised RGB too: converts it itself
            self.backbone = CaffeResNetBackbone(norm)
        else:
            self.backbone = ResNetBackbone(int(cfg.backbone[len("resnet"):]), norm)
        self.aspp = ASPP(self.backbone.out_channels, num_classes, cfg.aspp_rates)

    def single_scale(self, x: torch.Tensor) -> torch.Tensor:
        return self.aspp(self.backbone(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        """Logits at feature resolution. With multi_scale: in training the list
        [scale 1, other scales..., max] (each at scale 1's size) so the loss covers every
        branch, as DeepLab-v2 trains; in eval the max only."""
        if not self.cfg.multi_scale:
            return self.single_scale(x)
        base = self.single_scale(x)
        outs = [base]
        for s in self.cfg.msc_scales[1:]:
            xs = F.interpolate(x, scale_factor=s, mode="bilinear", align_corners=False)
            outs.append(F.interpolate(self.single_scale(xs), size=base.shape[-2:], mode="bilinear",
                                      align_corners=False))
        fused = torch.stack(outs).amax(dim=0)
        return outs + [fused] if self.training else fused

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters by learning-rate group: backbone (1x), ASPP weights (10x), ASPP biases (20x)."""
        return {"backbone": [p for p in self.backbone.parameters() if p.requires_grad],
                "aspp_weight": [b.weight for b in self.aspp.branches],
                "aspp_bias": [b.bias for b in self.aspp.branches]}


def load_init_weights(model: DeepLabV2, path: str | os.PathLike) -> dict[str, int]:
    """Initialise from a weights file; returns counts of loaded/skipped tensors.

    Accepted: a torchvision ResNet state dict (ImageNet; `fc.*` dropped), a DeepLab state dict
    with this model's key names (`backbone.*`, `aspp.*`), or deeplab-pytorch's conversion of the
    Caffe DeepLab-v2 (COCO-pretrained `deeplabv1_resnet101-coco.pth`, or a DeepLabV2_ResNet101_MSC
    file with `base.` keys) for `deeplab.backbone: resnet101_caffe`, keys mapped by
    `caffe_key_map` and the backbone loaded strictly. Any of them optionally under
    "model"/"state_dict" and with a `module.` prefix. Tensors whose shape differs (the ASPP of
    another class count) are skipped and logged.
    """
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise BadInputError(f"{path}: deeplab.init_weights file is missing; download it or set "
                            "deeplab.init_weights: null to train from scratch") from None
    except Exception as err:
        raise BadInputError(f"{path}: cannot read deeplab.init_weights ({err}); re-download it") from err
    for key in ("model", "state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise BadInputError(f"{path}: not a state dict; give a torchvision ResNet or DeepLab state dict")
    sd = {k.removeprefix("module."): v for k, v in obj.items() if torch.is_tensor(v)}
    if is_deeplab_pytorch_layout(sd):
        return _load_deeplab_pytorch(model, sd, path)
    # num_batches_tracked: BatchNorm bookkeeping that FrozenBatchNorm2d does not have.
    sd = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    if not any(k.startswith(("backbone.", "aspp.")) for k in sd):  # a bare ResNet: goes into the backbone
        sd = {f"backbone.{k}": v for k, v in sd.items() if not k.startswith("fc.")}
    own = model.state_dict()
    loaded = {k: v for k, v in sd.items() if k in own and own[k].shape == v.shape}
    skipped = sorted(set(sd) - set(loaded))
    backbone_keys = [k for k in own if k.startswith("backbone.") and not k.endswith("num_batches_tracked")]
    covered = sum(k in loaded for k in backbone_keys)
    if covered < 0.9 * len(backbone_keys):
        raise BadInputError(f"{path}: matches only {covered}/{len(backbone_keys)} backbone tensors of "
                            f"deeplab.backbone '{model.cfg.backbone}'; check that the file is for this backbone")
    model.load_state_dict(loaded, strict=False)
    if skipped:
        log.warning("init weights %s: skipped %d tensors (absent or other shape), e.g. %s", path, len(skipped),
                    skipped[:3])
    log.info("init weights %s: loaded %d tensors", path, len(loaded))
    return {"loaded": len(loaded), "skipped": len(skipped)}


def _load_deeplab_pytorch(model: DeepLabV2, sd: dict[str, torch.Tensor], path) -> dict[str, int]:
    """deeplab-pytorch's layout: every backbone tensor must be there with its shape and nothing
    else may be (strict); its ASPP loads only if it matches this model's (rates and class count),
    else it is skipped as a whole (e.g. COCO-Stuff's 182 classes for VOC's 21)."""
    if model.cfg.backbone != "resnet101_caffe":
        raise BadInputError(f"{path}: deeplab-pytorch's Caffe ResNet-101 layout (layer1.conv1.conv.weight, ...) "
                            f"needs deeplab.backbone: resnet101_caffe, not '{model.cfg.backbone}'")
    mapped, dropped = caffe_key_map(sd)
    own = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    own_aspp = {k for k in own if k.startswith("aspp.")}
    backbone = {k: v for k, v in mapped.items() if not k.startswith("aspp.")}
    aspp = {k: v for k, v in mapped.items() if k.startswith("aspp.")}
    problems = [f"missing {k}" for k in sorted(set(own) - own_aspp - set(backbone))]
    problems += [f"unexpected {k}" for k in sorted(set(backbone) - set(own))]
    problems += [f"{k}: shape {tuple(v.shape)}, model {tuple(own[k].shape)}" for k, v in backbone.items()
                 if k in own and own[k].shape != v.shape]
    if problems:
        raise BadInputError(f"{path}: not deeplab-pytorch's DeepLab-v2 ResNet-101 ({len(problems)} problem(s), "
                            f"e.g. {'; '.join(problems[:3])}); re-convert it with its convert.py")
    aspp_fits = set(aspp) == own_aspp and all(own[k].shape == v.shape for k, v in aspp.items())
    result = model.load_state_dict({**backbone, **(aspp if aspp_fits else {})}, strict=False)
    left = [k for k in result.missing_keys if not k.endswith("num_batches_tracked") and k not in own_aspp]
    assert not left and not result.unexpected_keys, (left, result.unexpected_keys)
    skipped = [k for k in dropped if not k.endswith("num_batches_tracked")] + ([] if aspp_fits else sorted(aspp))
    if not aspp_fits:
        log.warning("init weights %s: ASPP left at its initialisation (file: %d ASPP tensors of another shape "
                    "or count, e.g. %s)", path, len(aspp), sorted(aspp)[:2])
    loaded = len(backbone) + (len(aspp) if aspp_fits else 0)
    log.info("init weights %s (deeplab-pytorch layout): loaded %d tensors, skipped %d", path, loaded, len(skipped))
    return {"loaded": loaded, "skipped": len(skipped)}


def build_deeplab(num_classes: int, cfg: DeepLabModelConfig, init_weights: str | None = None) -> DeepLabV2:
    model = DeepLabV2(num_classes, cfg)
    if init_weights:
        load_init_weights(model, init_weights)
    return model
