"""Feature extractors for the classifier: dilated torchvision ResNets and a small CNN.

ResNet-50/101 run at output stride 8 (dilated layer3 and layer4, as DeepLab and EPS do), so the
localization maps keep enough resolution for 448-px crops. For the embedded 64-px benchmark a
measured prototype found the receptive field decides CAM quality: ~22 px at output stride 4 gave
the best CAMs, while a dilated ResNet-18 (receptive field larger than the whole image) gave flat
blobs. `SmallCnn` therefore has a 21-px receptive field and output stride 4.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from wsss.core.io import BadInputError

log = logging.getLogger(__name__)

RESNETS = ("resnet50", "resnet101")
BACKBONES = RESNETS + ("resnet38d", "small")


class ResNetFeatures(nn.Module):
    """torchvision ResNet without avgpool/fc, output stride 8 (layer3/4 dilated, rates 2 and 4)."""

    def __init__(self, name: str):
        super().__init__()
        import torchvision

        net = getattr(torchvision.models, name)(weights=None, replace_stride_with_dilation=[False, True, True])
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        self.out_channels = 2048
        self.output_stride = 8

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))


def _conv_bn(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SmallCnn(nn.Module):
    """Five 3×3 conv-BN-ReLU layers, strides 1,2,1,2,1: receptive field 21 px, output stride 4."""

    def __init__(self, width: int = 32):
        super().__init__()
        w = width
        self.body = nn.Sequential(_conv_bn(3, w, 1), _conv_bn(w, 2 * w, 2), _conv_bn(2 * w, 2 * w, 1),
                                  _conv_bn(2 * w, 4 * w, 2), _conv_bn(4 * w, 4 * w, 1))
        self.out_channels = 4 * w
        self.output_stride = 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _load_resnet_weights(features: ResNetFeatures, name: str, weights: str) -> None:
    """`weights`: a state-dict file (torchvision ResNet keys) or a torchvision enum name.

    An enum name ("IMAGENET1K_V2" or "ResNet50_Weights.IMAGENET1K_V2") goes through torchvision,
    which uses its cache and downloads only when the file is not there yet.
    """
    if Path(weights).suffix in (".pt", ".pth", ".bin") or Path(weights).exists():
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise BadInputError(f"{weights}: backbone weights file is missing; fix classifier.pretrained "
                                "(a file path or a torchvision weights name such as IMAGENET1K_V2)") from None
        except Exception as err:
            raise BadInputError(f"{weights}: cannot read backbone weights ({err}); re-download the file") from err
        state = state.get("state_dict", state.get("model", state)) if isinstance(state, dict) else state
    else:
        import torchvision

        enum_name = weights.split(".")[-1]
        try:
            enum = torchvision.models.get_model_weights(name)[enum_name]
            # No job downloads anything: only torchvision's cache is read.
            cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(enum.url).name
            if not cached.is_file():
                raise BadInputError(f"classifier.pretrained '{weights}': {cached} is not in torchvision's cache, and a "
                                    f"training job downloads nothing; add {Path(enum.url).name} (url {enum.url}) to "
                                    "weights.files and set classifier.pretrained to resources/weights/<that file>")
            state = enum.get_state_dict(progress=False)
        except KeyError:
            raise BadInputError(f"classifier.pretrained '{weights}' is neither a file nor a torchvision weights "
                                f"name of {name}; use e.g. IMAGENET1K_V2 or a path to a .pth file") from None
    # torchvision keys are conv1/bn1/layerN.*; ours group the stem, so map conv1.* → stem.0.* etc.
    remap = {"conv1.": "stem.0.", "bn1.": "stem.1."}
    mapped = {}
    for k, v in state.items():
        if k.startswith("fc."):
            continue
        for old, new in remap.items():
            if k.startswith(old):
                k = new + k[len(old):]
        mapped[k] = v
    missing, unexpected = features.load_state_dict(mapped, strict=False)
    if missing or unexpected:
        raise BadInputError(f"{weights}: not a {name} state dict (missing {missing[:3]}, unexpected "
                            f"{unexpected[:3]}); give torchvision ImageNet weights for {name}")
    log.info("loaded %s weights from %s", name, weights)


def build_backbone(name: str, pretrained: str | None = None, width: int = 32) -> nn.Module:
    """A feature extractor with attributes `out_channels` and `output_stride`."""
    if name in RESNETS:
        features = ResNetFeatures(name)
        if pretrained:
            _load_resnet_weights(features, name, pretrained)
        return features
    if name == "resnet38d":  # EPS's own backbone (wsss.models.resnet38d); `width` does not apply
        from wsss.models.resnet38d import ResNet38d, ResNet38dConfig, load_resnet38d_weights

        # Freezing is the classifier's (classifier.freeze_bn / frozen_blocks), not the backbone's.
        features = ResNet38d(ResNet38dConfig(freeze_bn=False, frozen_blocks=()))
        if pretrained:
            load_resnet38d_weights(features, pretrained)
        return features
    if name == "small":
        if pretrained:
            raise BadInputError("classifier.pretrained is set but the 'small' backbone has no pretrained "
                                "weights; set it to null or choose resnet50/resnet101/resnet38d")
        return SmallCnn(width)
    raise ValueError(f"unknown backbone '{name}'; choose one of {BACKBONES}")
