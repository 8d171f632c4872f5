"""DeepLab as EPS trains it: a dilated backbone (output stride 8) and a classifier head, with
optional multi-scale inputs (1, 0.75, 0.5) fused by a pixel-wise max, and BatchNorm frozen
(batches of 10 crops are too small to estimate its statistics).

`variant` picks the head:
- v2 (Chen et al., TPAMI 2017): ASPP, four parallel 3x3 classifiers with dilation rates
  6/12/18/24 whose logits are summed;
- v1: one 1x1 classifier on the same backbone. This is deeplab-pytorch's `DeepLabV1` (dilated
  ResNet + 1x1 conv `fc`), the container of its COCO-pretrained `deeplabv1_resnet101` weights; the
  EPS authors "manually make DeepLabV1 from DeepLabV2" with "the same pre-trained model" (EPS
  issue #6), which this reads as: the v2 backbone, ASPP replaced by that 1x1 `fc`. With
  `backbone: vgg16` the backbone is DeepLab-LargeFOV's VGG-16 (wsss.models.vgg16_largefov), whose
  fc6/fc7 are part of the backbone and whose fc8 is this 1x1 classifier: DeepLab-v1 as released.

`backbone: resnet101_caffe` is the Caffe ResNet-101 of the COCO-pretrained DeepLab-v2 the paper
starts from (wsss.models.caffe_resnet); `load_init_weights` reads deeplab-pytorch's conversion of it.

`backbone: small` builds a network of the same shape (a small dilated conv backbone + the head)
for the embedded 64-px benchmark, trained from scratch in seconds on a CPU.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from wsss.core.io import BadInputError
from wsss.core.schema import schema_defaults
from wsss.models.caffe_resnet import CaffeResNetBackbone, caffe_key_map, is_deeplab_pytorch_layout
from wsss.models.caffemodel import caffe_params, read_caffemodel
from wsss.models.vgg16_largefov import VGG16LargeFOV, is_largefov_layout, largefov_key_map

log = logging.getLogger(__name__)

BACKBONES = ("small", "resnet50", "resnet101", "resnet101_caffe", "vgg16")
VARIANTS = ("v2", "v1")
HEAD_PREFIXES = ("aspp.", "classifier.")


@dataclass
@schema_defaults("deeplab")
class DeepLabModelConfig:
    """Defaults: the embedded 64-px setting; config/voc12.yaml has the paper's (resnet101, rates
    6/12/18/24, MSC, frozen BN)."""

    backbone: str
    variant: str  # v2: ASPP head; v1: one 1x1 classifier (deeplab-pytorch's DeepLabV1; DeepLab-LargeFOV's fc8)
    aspp_rates: list[int]  # v2 only
    multi_scale: bool  # MSC: inputs at msc_scales, logits fused by max (training: loss on each)
    msc_scales: list[float]
    freeze_bn: bool  # True with pretrained weights: batches of 10 crops cannot estimate BN statistics
    width: int  # small backbone only: channels of its first stage
    small_output_stride: int  # small backbone only: 4 or 8 (64-px images leave 8x8 maps at 8)

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ValueError(f"deeplab.backbone must be one of {BACKBONES}, got {self.backbone!r}")
        if self.variant not in VARIANTS:
            raise ValueError(f"deeplab.variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.backbone == "vgg16" and self.variant != "v1":
            # DeepLab-v2's VGG-16 (ASPP-L: four fc6-fc7-fc8 branches) is not built here.
            raise ValueError("deeplab.backbone vgg16 is DeepLab-LargeFOV, a DeepLab-v1: set deeplab.variant: v1")
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


def classifier_1x1(in_channels: int, num_classes: int) -> nn.Conv2d:
    """DeepLab-v1's head: a 1x1 conv (deeplab-pytorch's `fc`, LargeFOV's fc8), initialised as DeepLab
    initialises its new layers (LargeFOV's fc8: gaussian std 0.01, bias 0)."""
    conv = nn.Conv2d(in_channels, num_classes, 1, bias=True)
    nn.init.normal_(conv.weight, std=0.01)
    nn.init.zeros_(conv.bias)
    return conv


class DeepLab(nn.Module):
    """Backbone + head (`aspp` for v2, `classifier` for v1: the state-dict prefixes), optional MSC."""

    def __init__(self, num_classes: int, cfg: DeepLabModelConfig):
        super().__init__()
        self.cfg = cfg
        norm = FrozenBatchNorm2d if cfg.freeze_bn else nn.BatchNorm2d
        if cfg.backbone == "small":
            self.backbone = SmallBackbone(cfg.width, cfg.small_output_stride, norm)
        elif cfg.backbone == "resnet101_caffe":  # expects ImageNet-normalised RGB too: converts it itself
            self.backbone = CaffeResNetBackbone(norm)
        elif cfg.backbone == "vgg16":  # no BatchNorm; converts its input like the Caffe ResNet
            self.backbone = VGG16LargeFOV()
        else:
            self.backbone = ResNetBackbone(int(cfg.backbone[len("resnet"):]), norm)
        if cfg.variant == "v2":
            self.aspp = ASPP(self.backbone.out_channels, num_classes, cfg.aspp_rates)
        else:
            self.classifier = classifier_1x1(self.backbone.out_channels, num_classes)

    @property
    def head(self) -> nn.Module:
        return self.aspp if self.cfg.variant == "v2" else self.classifier

    def single_scale(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

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
        """Parameters by learning-rate group, as DeepLab's Caffe prototxts set lr_mult/decay_mult:
        backbone (1x), backbone conv biases (VGG-16's: 2x, no decay; ResNets' convs have none), head
        weights (10x) and biases (20x, no decay). deeplab-pytorch's `get_params` keys on the module
        name "aspp", which its DeepLabV1's `fc` does not carry; the head is v1's classifier here."""
        biases = {id(m.bias) for m in self.backbone.modules() if isinstance(m, nn.Conv2d) and m.bias is not None}
        trainable = [p for p in self.backbone.parameters() if p.requires_grad]
        head = [self.head] if self.cfg.variant == "v1" else list(self.aspp.branches)
        return {"backbone": [p for p in trainable if id(p) not in biases],
                "backbone_bias": [p for p in trainable if id(p) in biases],
                "head_weight": [c.weight for c in head],
                "head_bias": [c.bias for c in head]}


DeepLabV2 = DeepLab  # the v2-only name that tests and callers outside this package import


def read_weights_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A weights file as a flat state dict: a `.caffemodel` (read without Caffe), else a torch file,
    optionally under "model"/"state_dict" and with a `module.` prefix."""
    if str(path).endswith(".caffemodel"):
        return {k: torch.from_numpy(v) for k, v in caffe_params(read_caffemodel(path)).items()}
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
    return {k.removeprefix("module."): v for k, v in obj.items() if torch.is_tensor(v)}


def load_init_weights(model: DeepLab, path: str | os.PathLike) -> dict[str, int]:
    """Initialise from a weights file; returns counts of loaded/skipped tensors.

    Accepted: a torchvision ResNet state dict (ImageNet; `fc.*` dropped), a DeepLab state dict
    with this model's key names (`backbone.*`, `aspp.*` / `classifier.*`), and the published layouts,
    whose backbone loads strictly:
    - deeplab-pytorch's conversion of the Caffe DeepLab (COCO-pretrained `deeplabv1_resnet101-coco.pth`,
      a DeepLabV1; or a DeepLabV2_ResNet101_MSC file with `base.` keys) for `deeplab.backbone:
      resnet101_caffe`, keys mapped by `caffe_key_map`;
    - DeepLab-LargeFOV's Caffe layer names (vgg16_20M.caffemodel itself, or a state dict converted
      from it) for `deeplab.backbone: vgg16`, keys mapped by `largefov_key_map`.
    Any of them optionally under "model"/"state_dict" and with a `module.` prefix. A head (ASPP or
    1x1 classifier) of another shape, class count or variant is skipped and logged.
    """
    sd = read_weights_file(path)
    if is_deeplab_pytorch_layout(sd):
        return _load_published(model, *caffe_key_map(sd), path, "resnet101_caffe",
                               "deeplab-pytorch's DeepLab ResNet-101", "re-convert it with its convert.py")
    if is_largefov_layout(sd):
        return _load_published(model, *largefov_key_map(sd), path, "vgg16", "DeepLab-LargeFOV's VGG-16",
                               "use DeepLab's vgg16_20M.caffemodel (weights.files)")
    # num_batches_tracked: BatchNorm bookkeeping that FrozenBatchNorm2d does not have.
    sd = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    if not any(k.startswith(("backbone.", *HEAD_PREFIXES)) for k in sd):  # a bare ResNet: goes into the backbone
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


def _load_published(model: DeepLab, mapped: dict[str, torch.Tensor], dropped: list[str], path, backbone: str,
                    layout: str, fix: str) -> dict[str, int]:
    """A published layout, mapped to this project's names: every backbone tensor must be there with
    its shape and nothing else may be (strict); the file's head loads only if it is this model's
    (variant, rates and class count), else it is skipped as a whole (e.g. COCO-Stuff's 182 classes
    for VOC's 21, or a v1 classifier for a v2 model)."""
    if model.cfg.backbone != backbone:
        raise BadInputError(f"{path}: {layout} layout needs deeplab.backbone: {backbone}, "
                            f"not '{model.cfg.backbone}'")
    own = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    own_head = {k for k in own if k.startswith(HEAD_PREFIXES)}
    body = {k: v for k, v in mapped.items() if not k.startswith(HEAD_PREFIXES)}
    head = {k: v for k, v in mapped.items() if k.startswith(HEAD_PREFIXES)}
    problems = [f"missing {k}" for k in sorted(set(own) - own_head - set(body))]
    problems += [f"unexpected {k}" for k in sorted(set(body) - set(own))]
    problems += [f"{k}: shape {tuple(v.shape)}, model {tuple(own[k].shape)}" for k, v in body.items()
                 if k in own and own[k].shape != v.shape]
    if problems:
        raise BadInputError(f"{path}: not {layout} ({len(problems)} problem(s), e.g. {'; '.join(problems[:3])}); "
                            f"{fix}")
    head_fits = bool(head) and set(head) == own_head and all(own[k].shape == v.shape for k, v in head.items())
    result = model.load_state_dict({**body, **(head if head_fits else {})}, strict=False)
    left = [k for k in result.missing_keys if not k.endswith("num_batches_tracked") and k not in own_head]
    assert not left and not result.unexpected_keys, (left, result.unexpected_keys)
    skipped = [k for k in dropped if not k.endswith("num_batches_tracked")] + ([] if head_fits else sorted(head))
    if head and not head_fits:
        log.warning("init weights %s: head left at its initialisation (file: %d head tensors of another shape, "
                    "count or variant, e.g. %s)", path, len(head), sorted(head)[:2])
    loaded = len(body) + (len(head) if head_fits else 0)
    log.info("init weights %s (%s layout): loaded %d tensors, skipped %d", path, layout, loaded, len(skipped))
    return {"loaded": loaded, "skipped": len(skipped)}


def build_deeplab(num_classes: int, cfg: DeepLabModelConfig, init_weights: str | None = None) -> DeepLab:
    model = DeepLab(num_classes, cfg)
    if init_weights:
        load_init_weights(model, init_weights)
    return model
