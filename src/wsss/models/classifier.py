"""Image classifiers whose last layer is a 1×1 conv, so their outputs are localization maps.

The classifier's registry record (wsss.methods) says whether its head adds a background map:
- without (cam): C maps; logits = GAP of the maps (equal to GAP-then-FC, since both are linear);
  ReLU of the maps gives the CAMs.
- with (eps): C+1 maps (the last is background), no bias; logits = GAP of the first C maps only,
  so the classification loss never touches the background map (EPS, Lee et al. 2021, §3).
"""

from __future__ import annotations

import torch
from torch import nn

from wsss import methods
from wsss.models.backbones import build_backbone


class LocalizationClassifier(nn.Module):
    def __init__(self, backbone: nn.Module, num_classes: int, method: str):
        super().__init__()
        self.method, self.num_classes = method, num_classes
        self.background_map = methods.classifier(method).background_map
        self.backbone = backbone
        out_maps = num_classes + 1 if self.background_map else num_classes
        self.head = nn.Conv2d(backbone.out_channels, out_maps, 1, bias=False)
        # Small init: the head starts near zero so early EPS softmax is near uniform.
        nn.init.normal_(self.head.weight, std=0.01)

    @property
    def output_stride(self) -> int:
        return self.backbone.output_stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) → maps (N, C or C+1, H/os, W/os)."""
        return self.head(self.backbone(x))

    def logits(self, maps: torch.Tensor) -> torch.Tensor:
        """Image-level class scores: GAP of the C class maps (the background map excluded)."""
        return maps[:, : self.num_classes].mean(dim=(2, 3))

    def param_groups(self, lr: float, weight_decay: float, head_lr_mult: float) -> list[dict]:
        """SGD groups: backbone at lr, the new head at head_lr_mult × lr (10× in the paper)."""
        return [{"params": list(self.backbone.parameters()), "lr": lr, "weight_decay": weight_decay},
                {"params": list(self.head.parameters()), "lr": lr * head_lr_mult, "weight_decay": weight_decay}]


def build_classifier(method: str, num_classes: int, backbone: str, pretrained: str | None = None,
                     width: int = 32) -> LocalizationClassifier:
    return LocalizationClassifier(build_backbone(backbone, pretrained, width), num_classes, method)
