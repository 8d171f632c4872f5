"""Image classifiers whose last layer is a 1×1 conv, so their outputs are localization maps.

The classifier's registry record (wsss.methods) says whether its head adds a background map:
- without (cam): C maps; logits = GAP of the maps (equal to GAP-then-FC, since both are linear);
  ReLU of the maps gives the CAMs.
- with (eps): C+1 maps (the last is background), no bias; logits = GAP of the first C maps only,
  so the classification loss never touches the background map (EPS, Lee et al. 2021, §3).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn

from wsss.core.io import BadInputError
from wsss.core.model_files import load_model
from wsss.core.schema import schema_defaults
from wsss.methods.registry import Classifier, classifier
from wsss.models.backbones import build_backbone


@dataclass
@schema_defaults("classifier")
class ModelConfig:
    """Network shape: enough to rebuild the model from a saved file."""

    backbone: str  # small | resnet50 | resnet101 | resnet38d
    width: int  # channels of the small CNN's first layer
    pretrained: str | None  # ImageNet weights: file path or torchvision enum name
    freeze_bn: bool  # every BN in eval mode, affine fixed (the official recipe)
    frozen_blocks: list[str]  # backbone blocks never trained (official: conv1a, b2, b2_1, b2_2)
    head_init: str  # xavier (official fc8) | normal (std 0.01)


@dataclass(frozen=True)
class Freezing:
    """What the official recipe keeps fixed: every BatchNorm (eval mode, affine not trained) and
    the early blocks (named children of the backbone; resnet38d: conv1a, b2, b2_1, b2_2)."""

    freeze_bn: bool = False
    frozen_blocks: tuple[str, ...] = ()


class LocalizationClassifier(nn.Module):
    def __init__(self, backbone: nn.Module, num_classes: int, record: Classifier, head_init: str = "normal",
                 head_dropout: float = 0.0, freezing: Freezing = Freezing()):
        super().__init__()
        self.name, self.num_classes = record.name, num_classes
        self.background_map = record.background_map
        self.backbone = backbone
        out_maps = num_classes + 1 if self.background_map else num_classes
        # Dropout2d on the features before the 1x1 head: resnet38_cls's `dropout7` (GAP and the
        # head are linear, so dropping before the head is the same network).
        self.dropout = nn.Dropout2d(head_dropout) if head_dropout > 0 else nn.Identity()
        self.head = nn.Conv2d(backbone.out_channels, out_maps, 1, bias=False)
        if head_init == "xavier":  # the official fc8
            nn.init.xavier_uniform_(self.head.weight)
        elif head_init == "normal":  # small: from scratch the EPS softmax starts near uniform
            nn.init.normal_(self.head.weight, std=0.01)
        else:
            raise ValueError(f"classifier.head_init must be xavier or normal, got {head_init!r}")
        self.freezing = freezing
        children = dict(backbone.named_children())
        unknown = [b for b in freezing.frozen_blocks if b not in children]
        if unknown:
            raise ValueError(f"classifier.frozen_blocks {unknown} are not blocks of this backbone; its blocks: "
                             f"{list(children)}")
        self._freeze()

    def _freeze(self) -> None:
        for name in self.freezing.frozen_blocks:
            for p in getattr(self.backbone, name).parameters():
                p.requires_grad_(False)
        if self.freezing.freeze_bn:
            for m in self.backbone.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
                    for p in m.parameters():
                        p.requires_grad_(False)

    def train(self, mode: bool = True) -> "LocalizationClassifier":
        # Re-applied on every train(): a frozen BN keeps its ImageNet statistics.
        super().train(mode)
        self._freeze()
        return self

    @property
    def output_stride(self) -> int:
        return self.backbone.output_stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) → maps (N, C or C+1, H/os, W/os)."""
        return self.head(self.dropout(self.backbone(x)))

    def logits(self, maps: torch.Tensor) -> torch.Tensor:
        """Image-level class scores: GAP of the C class maps (the background map excluded)."""
        return maps[:, : self.num_classes].mean(dim=(2, 3))

    def param_groups(self, lr: float, weight_decay: float, head_lr_mult: float, bias_lr_mult: float = 1.0,
                     bias_weight_decay: bool = True) -> list[dict]:
        """SGD groups (PSA/EPS): backbone weights (and trainable BN parameters) at lr with decay; conv
        biases at bias_lr_mult x lr, decayed only if bias_weight_decay; the new head at
        head_lr_mult x lr. Frozen parameters are left out (they get no gradient anyway)."""
        bn = {id(p) for m in self.backbone.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
              for p in m.parameters()}
        trainable = [(n, p) for n, p in self.backbone.named_parameters() if p.requires_grad]
        biases = [p for n, p in trainable if n.endswith("bias") and id(p) not in bn]
        weights = [p for n, p in trainable if not (n.endswith("bias") and id(p) not in bn)]
        groups = [{"params": weights, "lr": lr, "weight_decay": weight_decay}]
        if biases:
            groups.append({"params": biases, "lr": lr * bias_lr_mult,
                           "weight_decay": weight_decay if bias_weight_decay else 0.0})
        groups.append({"params": list(self.head.parameters()), "lr": lr * head_lr_mult,
                       "weight_decay": weight_decay})
        return groups


def build_classifier(record: Classifier, num_classes: int, backbone: str, pretrained: str | None = None,
                     width: int = 32, head_init: str = "normal", head_dropout: float = 0.0,
                     freeze_bn: bool = False, frozen_blocks=()) -> LocalizationClassifier:
    """The classifier of `record` (wsss.methods) on a backbone (wsss.models.backbones); the keyword
    defaults are a plain network for tests and the official checkpoints' import."""
    return LocalizationClassifier(build_backbone(backbone, pretrained, width), num_classes, record, head_init,
                                  head_dropout, Freezing(freeze_bn, tuple(frozen_blocks)))


def load_classifier(path: str | os.PathLike) -> tuple[LocalizationClassifier, dict]:
    """Rebuild a trained classifier from its model file (no pretrained weights are fetched)."""
    obj = load_model(path)
    cfg = obj["config"]
    try:
        m = {**cfg["model"], "pretrained": None}  # the trained weights follow: fetch nothing
        model = build_classifier(classifier(cfg["classifier"]), len(cfg["class_names"]), **m)
        model.load_state_dict(obj["model"])
    except (KeyError, RuntimeError, ValueError) as err:
        raise BadInputError(f"{path}: not a classifier model file ({err}); re-run train_classifier") from err
    return model.eval(), cfg
