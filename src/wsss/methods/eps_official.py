"""The pseudo-mask protocol of the official EPS `infer.py` (halbielee/EPS), as pure functions.

Per image, for every scale s in (0.5, 1, 1.5, 2): the RGB image resized with PIL bicubic to
(round(W·s), round(H·s)), ImageNet-normalised, and its horizontal flip each go through the net.
- eps (`resnet38_eps`): softmax over all C+1 maps at feature resolution, bilinear upsampling
  (align_corners=False) to the image size, the background map dropped, the C foreground maps
  multiplied by the image label (absent classes zeroed), the flipped view flipped back.
- cam (`resnet38_cls.forward_cam`): ReLU of the C maps, then the same upsampling, label and flip.
The views are summed (not averaged). Only then is each class's summed map divided by its own
maximum over the image (+1e-5): one normalisation per class, after the sum over scales and
flips, not per scale. The mask is the argmax over a constant background plane (`--thr`, 0.20
in the VOC and COCO scripts) and the normalised maps of the present classes.

This differs from `wsss.stages.infer_cams` (per-view bilinear resize of the input tensor, softmax
after upsampling over the present classes only, average), which is why it is kept separate.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from wsss.core.images import normalize

OFFICIAL_SCALES = (0.5, 1.0, 1.5, 2.0)
OFFICIAL_THRESHOLD = 0.20   # infer.py --thr default and the value of every official script
NORM_EPSILON = 1e-5


def _scaled_inputs(image: np.ndarray, scale: float, flip: bool) -> torch.Tensor:
    """(1 or 2, 3, h, w): the bicubic-resized image (PIL, as the official code) [and its flip]."""
    h, w = image.shape[:2]
    size = (round(w * scale), round(h * scale))  # PIL takes (width, height)
    pil = Image.fromarray(image)
    scaled = np.asarray(pil.resize(size, resample=Image.BICUBIC)) if size != (w, h) else image
    x = normalize(scaled)[None]
    return torch.cat([x, x.flip(-1)]) if flip else x


def official_maps(model, image: np.ndarray, present: Sequence[int], scales: Sequence[float] = OFFICIAL_SCALES,
                  flip: bool = True) -> np.ndarray:
    """Summed foreground maps (K, H, W) float32 of the `present` classes, in the order given.

    `model`: a LocalizationClassifier (`background_map`: eps; else cam, `num_classes`) returning its maps;
    `image`: (H, W, 3) uint8 RGB. Not normalised: `official_eps_mask` does that.
    """
    image = np.ascontiguousarray(image, dtype=np.uint8)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3) uint8 RGB, got shape {image.shape}")
    h, w = image.shape[:2]
    present = [int(c) for c in present]
    if any(not 0 <= c < model.num_classes for c in present):
        raise ValueError(f"present classes {present} outside 0..{model.num_classes - 1}")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total = torch.zeros(len(present), h, w, dtype=torch.float32, device=device)
    keep = torch.tensor(present, dtype=torch.long, device=device)
    # no_grad as a block, not a decorator: `make mutation` (mutmut) leaves decorated functions unmutated
    with torch.no_grad():
        try:
            for s in scales:
                maps = model(_scaled_inputs(image, s, flip).to(device)).float()
                if model.background_map:
                    maps = torch.softmax(maps, dim=1)   # over all C+1 maps, background included
                else:
                    maps = F.relu(maps)
                maps = F.interpolate(maps, size=(h, w), mode="bilinear", align_corners=False)
                maps = maps[:, keep]                    # × label: absent classes are zero, so skip them
                if flip:
                    maps = torch.stack([maps[0], maps[1].flip(-1)])
                total += maps.sum(0)
        finally:
            model.train(was_training)
    return total.cpu().numpy()


def official_eps_mask(classes: Sequence[int] | np.ndarray, maps: np.ndarray,
                      threshold: float = OFFICIAL_THRESHOLD) -> np.ndarray:
    """(H, W) uint8 VOC labels (0 background, class index + 1) from summed maps (K, H, W).

    Each map is divided by (its maximum + 1e-5); a pixel takes the class of the highest map, or
    background when no map exceeds `threshold`. Ties go to background, then to the lower class
    index, as numpy's argmax over the official (background, class 0, class 1, …) stack.
    """
    classes = np.asarray(classes, dtype=np.int64).reshape(-1)
    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim != 3 or maps.shape[0] != len(classes):
        raise ValueError(f"maps must be (K, H, W) for K={len(classes)} classes, got shape {maps.shape}")
    if threshold < 0:
        # The official stack also holds zero planes of the absent classes; with a negative
        # threshold they would win, which no sensible run wants.
        raise ValueError(f"threshold must be >= 0, got {threshold}")
    order = np.argsort(classes, kind="stable")
    classes, maps = classes[order], maps[order]
    norm = maps / (maps.max(axis=(1, 2), keepdims=True, initial=0.0) + NORM_EPSILON)
    stack = np.concatenate([np.full((1,) + maps.shape[1:], threshold, np.float32), norm])
    winner = stack.argmax(axis=0)
    labels = np.concatenate([[0], classes + 1]).astype(np.uint8)
    return labels[winner]
