"""The CAM baseline's training loss: multi-label soft margin on the GAP of the class maps."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def classification_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Multi-label soft margin on the C class logits."""
    return F.multilabel_soft_margin_loss(logits.float(), labels.float())


def image_logits(model, maps: torch.Tensor) -> torch.Tensor:
    net = model.module if hasattr(model, "module") else model
    return net.logits(maps)


def cam_step(num_classes: int, settings, class_names: list[str]):
    """The CAM baseline: multi-label soft margin on the GAP of the class maps."""

    def step(model, batch):
        l_cls = classification_loss(image_logits(model, model(batch["image"])), batch["label"])
        return {"loss": l_cls, "cls": l_cls.detach()}

    return step
