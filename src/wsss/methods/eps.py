"""EPS (Lee et al., CVPR 2021): its classifier (C + 1 maps, L_cls + L_sal: wsss.methods.eps_loss), its
own config keys, and its pseudo-mask rules (numpy only), chosen by pseudo_masks.eps_rule:

- argmax: argmax of the stored softmax over the present classes' maps plus the background map
  (background last, wsss.stages.infer_cams);
- official: the authors' infer.py: the maps were computed by that protocol and stored divided by
  their per-class max (wsss.methods.eps_official); a constant `threshold` background plane, argmax,
  ties to the background (wsss.methods.eps_official computes those maps).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wsss.core.io import BadInputError
from wsss.core.schema import schema_defaults
from wsss.methods.cam import labels_from_argmax
from wsss.methods.registry import Classifier, Method, register_classifier, register_method


@dataclass
@schema_defaults("classifier")
class EpsSettings:
    """EPS's own keys of the `classifier` section (its Classifier record's `settings`)."""

    tau: float  # overlap threshold of the map selection
    lam: float  # weight of the foreground map in the estimated saliency
    # Iterations trained with L_cls only before the saliency loss starts (paper: 0): a warm-up
    # would let L_cls make the class maps peaked before the selection starts.
    sal_warmup: int
    # Present classes whose rounded softmax map is empty join neither group (module docstring:
    # not in the paper, which starts from ImageNet weights; needed from scratch).
    skip_unclaimed: bool
    saliency_resize: str  # saliency to the map size: nearest (official) | bilinear


def eps_mask(data: dict, saliency: np.ndarray | None, params: dict) -> np.ndarray:
    if params.get("eps_rule") == "official":
        if "official" not in data:
            raise BadInputError("pseudo_masks.eps_rule is official but these maps were not made by the official "
                                "protocol; rerun infer_cams (snakemake --forcerun infer_cams)")
        plane = np.full((1,) + data["maps"].shape[1:], params["threshold"], dtype=np.float32)
        return labels_from_argmax(data["classes"], np.concatenate([plane, data["maps"]]).argmax(axis=0))
    if "probs" not in data:
        raise BadInputError("this map file has no 'probs': it was not made by a classifier with a "
                            "background map; make eps pseudo-masks from results/cams/eps")
    return labels_from_argmax(data["classes"], data["probs"].argmax(axis=0), background_at_end=True)


EPS = register_classifier(Classifier("eps", background_map=True, trains_on_saliency=True,
                                     loss="wsss.methods.eps_loss:eps_step", settings=EpsSettings))
register_method(Method("eps", "EPS", "eps", pseudo_mask="wsss.methods.eps:eps_mask",
                       mask_keys=("eps_rule", "threshold"),
                       crf_unary="probs", grid_crf=True))
