"""The CAM baseline: its classifier (L_cls only: wsss.methods.cam_loss) and its pseudo-mask rules
(numpy only: pseudo-mask jobs never import torch).

- `cam`: each present class map divided by its max, a constant background plane (the official
  EPS/PSA code: 0.2 on VOC), argmax; ties go to the background.
- `cam_sal`: the `cam` mask with pixels of saliency below `saliency_threshold` set to background
  (the usual "CAM × saliency" baseline).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wsss.core.io import BadInputError
from wsss.core.schema import schema_defaults
from wsss.methods.registry import Classifier, Method, register_classifier, register_method


@dataclass
@schema_defaults("classifier")
class CamSettings:
    """The CAM classifier's own keys of the `classifier` section."""

    head_dropout: float  # Dropout2d before the 1x1 head (resnet38_cls's dropout7)


def normalized_cams(maps: np.ndarray) -> np.ndarray:
    """(K, H, W) non-negative maps divided by their per-class max (1e-5 guards empty maps)."""
    peak = maps.reshape(len(maps), -1).max(axis=1) if len(maps) else np.zeros(0)
    return maps / (np.maximum(peak, 1e-5)[:, None, None])


def with_background_plane(maps: np.ndarray, threshold: float) -> np.ndarray:
    """[threshold plane, max-normalised class maps] → (K + 1, H, W), background first."""
    plane = np.full((1,) + maps.shape[1:], threshold, dtype=np.float32)
    return np.concatenate([plane, normalized_cams(maps)], axis=0)


def labels_from_argmax(classes: np.ndarray, index: np.ndarray, background_at_end: bool = False) -> np.ndarray:
    """Map argmax indices over [bg, classes...] (or [classes..., bg]) to the dataset's label values (uint8:
    0 background, c + 1 for class index c)."""
    fg = np.asarray(classes, dtype=np.int64) + 1
    lut = np.concatenate([fg, [0]]) if background_at_end else np.concatenate([[0], fg])
    return lut[index].astype(np.uint8)


def threshold_mask(classes: np.ndarray, maps: np.ndarray, threshold: float) -> np.ndarray:
    """argmax over [threshold plane, max-normalised class maps] → (H, W) uint8 labels."""
    # Ties go to the background (index 0): argmax returns the first maximum.
    return labels_from_argmax(classes, with_background_plane(maps, threshold).argmax(axis=0))


def cam_mask(data: dict, saliency: np.ndarray | None, params: dict) -> np.ndarray:
    return threshold_mask(data["classes"], data["maps"], params["threshold"])


def cam_sal_mask(data: dict, saliency: np.ndarray | None, params: dict) -> np.ndarray:
    mask = cam_mask(data, None, params)
    if saliency is None:
        raise BadInputError("cam_sal pseudo-masks need saliency maps (results/saliency/maps)")
    if saliency.shape != mask.shape:
        raise BadInputError(f"saliency map {saliency.shape} and CAM {mask.shape} differ in size; "
                            "re-run infer_saliency and infer_cams (snakemake --forcerun infer_cams)")
    mask[saliency < params["saliency_threshold"]] = 0
    return mask


CAM = register_classifier(Classifier("cam", background_map=False, trains_on_saliency=False,
                                     loss="wsss.methods.cam_loss:cam_step", settings=CamSettings))
register_method(Method("cam", "CAM", "cam", pseudo_mask="wsss.methods.cam:cam_mask", mask_keys=("threshold",),
                       threshold_sweep=True))
register_method(Method("cam_sal", "CAM × saliency", "cam", needs_saliency=True,
                       pseudo_mask="wsss.methods.cam:cam_sal_mask", mask_keys=("threshold", "saliency_threshold"),
                       crf_saliency_gate=True, grid=False))
