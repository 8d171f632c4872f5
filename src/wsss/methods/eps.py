"""EPS's pseudo-mask rules (numpy only), chosen by pseudo_masks.eps_rule:

- argmax: argmax of the stored softmax over the present classes' maps plus the background map
  (background last, wsss.stages.infer_cams);
- official: the authors' infer.py: the maps were computed by that protocol and stored divided by
  their per-class max (wsss.methods.eps_official); a constant `threshold` background plane, argmax,
  ties to the background.
"""

from __future__ import annotations

import numpy as np

from wsss.core.io import BadInputError
from wsss.methods.cam import voc_labels


def eps_mask(data: dict, saliency: np.ndarray | None, params: dict) -> np.ndarray:
    if params.get("eps_rule") == "official":
        if "official" not in data:
            raise BadInputError("pseudo_masks.eps_rule is official but these maps were not made by the official "
                                "protocol; rerun infer_cams (snakemake --forcerun infer_cams)")
        plane = np.full((1,) + data["maps"].shape[1:], params["threshold"], dtype=np.float32)
        return voc_labels(data["classes"], np.concatenate([plane, data["maps"]]).argmax(axis=0))
    if "probs" not in data:
        raise BadInputError("this map file has no 'probs': it was not made by a classifier with a "
                            "background map; make eps pseudo-masks from results/cams/eps")
    return voc_labels(data["classes"], data["probs"].argmax(axis=0), background_at_end=True)
