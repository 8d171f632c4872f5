"""EPS's pseudo-mask rule (numpy only): argmax of the stored softmax over the present classes'
maps plus the background map (background last, wsss.infer.cams)."""

from __future__ import annotations

import numpy as np

from wsss.io import BadInputError
from wsss.methods.cam import voc_labels


def eps_mask(data: dict, saliency: np.ndarray | None, params: dict) -> np.ndarray:
    if "probs" not in data:
        raise BadInputError("this map file has no 'probs': it was not made by a classifier with a "
                            "background map; make eps pseudo-masks from results/cams/eps")
    return voc_labels(data["classes"], data["probs"].argmax(axis=0), background_at_end=True)
