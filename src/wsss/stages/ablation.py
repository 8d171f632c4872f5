"""The paper's ablations: EPS pseudo-mask mIoU over a grid of one setting.

An ablation is a list of points (the `ablation` config section: values of classifier.tau,
classifier.lam, or the saliency the EPS classifier trains on). Each point is one complete EPS
run (train_classifier → infer_cams → make_pseudo_masks → evaluate_miou, the workflow's own
rules) under the variant folder `results/ablation/<ablation>-<value>/`; a point equal to the
configured run (e.g. τ = classifier.tau, or the workflow's saliency maps) is that run itself and
trains nothing again (CPU training is deterministic for its config).

The saliency ablation swaps the maps the classifier trains on: the workflow's maps
(`results/saliency/maps`: PFAN or whatever saliency.source gives), the ground-truth foreground,
or a centre prior. EPS's pseudo-mask rule reads only the classifier's maps (wsss.methods.eps), so
the training maps are the only saliency a point sees; a method whose mask rule reads saliency
(cam_sal) would be given the same maps under a variant (`variant_saliency` in
workflow/rules/inputs/classifier.smk).

This module imports nothing heavy at the top: the Snakefile imports it while parsing.
"""

from __future__ import annotations

import logging
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

# The method (and its classifier) whose pseudo-masks every ablation scores.
METHOD = "eps"
CLASSIFIER = "eps"


@dataclass(frozen=True)
class Ablation:
    name: str               # the `ablation` config key and the prefix of its points' folders
    label: str              # axis label of its figure
    key: str | None         # the classifier config key a point sets (None: the training saliency)
    plot: str               # figure kind: line (a numeric grid) | bar (named sources)


ABLATIONS: dict[str, Ablation] = {
    "tau": Ablation("tau", "τ (classifier.tau: overlap threshold of the map selection)", "tau", "line"),
    "lam": Ablation("lam", "λ (classifier.lam: foreground weight of the estimated saliency)", "lam", "line"),
    "saliency": Ablation("saliency", "saliency maps the EPS classifier trains on", None, "bar"),
}

# The saliency sources of the saliency ablation: `workflow` is results/saliency/maps; the others
# are made by ablation_saliency from the prepared train_aug data ("module:function" f(label, params)).
WORKFLOW_SALIENCY = "workflow"
GENERATED_SALIENCY = {
    "ground_truth": "wsss.stages.ablation:ground_truth_saliency",
    "centre_prior": "wsss.stages.ablation:centre_prior_saliency",
}

# The variant folder of a point: "" (the configured run) or "ablation/<name>-<value>/".
VARIANT_RE = r"(ablation/(" + "|".join(ABLATIONS) + r")-[^/]+/)?"


def format_value(value) -> str:
    """A point's value as its folder and table show it (0.30000001 → 0.3; names as they are)."""
    return value if isinstance(value, str) else f"{float(value):g}"


def point_name(name: str, value) -> str:
    return f"{name}-{format_value(value)}"


def parse_variant(variant: str) -> tuple[str, str] | None:
    """(ablation, value) of a variant folder, or None for the configured run ("")."""
    if not variant:
        return None
    m = re.fullmatch(r"ablation/([a-z_]+)-([^/]+)/", variant)
    if not m or m.group(1) not in ABLATIONS:
        raise ValueError(f"not an ablation variant: {variant!r} (expected ablation/<{'|'.join(ABLATIONS)}>-<value>/)")
    return m.group(1), m.group(2)


def is_configured(name: str, value, section: dict) -> bool:
    """Whether a point is the configured run (`section`: the config's classifier section)."""
    key = ABLATIONS[name].key
    if key is None:
        return value == WORKFLOW_SALIENCY
    return math.isclose(float(value), float(section[key]), rel_tol=0, abs_tol=1e-9)


def variant(name: str, value, section: dict) -> str:
    """The variant folder whose results a point reads ("" when it is the configured run)."""
    return "" if is_configured(name, value, section) else f"ablation/{point_name(name, value)}/"


def point_section(section: dict, variant_dir: str) -> dict:
    """The classifier config section of a variant: the configured one with the point's key set."""
    parsed = parse_variant(variant_dir)
    if parsed is None or ABLATIONS[parsed[0]].key is None:
        return section
    return {**section, ABLATIONS[parsed[0]].key: float(parsed[1])}


def point_saliency(variant_dir: str) -> str | None:
    """The generated saliency source a variant trains on (None: the workflow's maps)."""
    parsed = parse_variant(variant_dir)
    if parsed is None or ABLATIONS[parsed[0]].key is not None or parsed[1] == WORKFLOW_SALIENCY:
        return None
    if parsed[1] not in GENERATED_SALIENCY:
        raise ValueError(f"unknown saliency source {parsed[1]!r}; one of {WORKFLOW_SALIENCY}, "
                         f"{', '.join(GENERATED_SALIENCY)}")
    return parsed[1]


def point_label(name: str, value, saliency_section: dict) -> str:
    """What a point is, for the table's `label` column and the figure."""
    if ABLATIONS[name].key is not None:
        return f"{name} = {format_value(value)}"
    return {
        WORKFLOW_SALIENCY: f"workflow maps ({saliency_section['source']})",
        "ground_truth": "ground-truth foreground",
        "centre_prior": f"centre prior (σ {saliency_section['centre_prior_sigma']:g})",
    }[value]


# ---------------------------------------------------------------------------- generated saliency
def ground_truth_saliency(label, params: dict):
    """Foreground of the ground truth: every class pixel (not background 0, not ignore 255) is 1."""
    import numpy as np

    return ((label != 0) & (label != 255)).astype(np.float32)


def centre_prior_saliency(label, params: dict):
    """The centre-prior Gaussian of the image's size (saliency.centre_prior_sigma)."""
    from wsss.metrics.saliency import centre_prior

    return centre_prior(*label.shape, sigma=params["centre_prior_sigma"])


def ablation_saliency(source: str, gt_dir: str | os.PathLike, ids_file: str | os.PathLike,
                      out_dir: str | os.PathLike, params: dict) -> int:
    """Write `<out_dir>/<id>.png` (8-bit grey, image size) of saliency `source` for every id, as one
    folder atomically. The ground-truth label PNG of each id gives its size (and its foreground)."""
    from wsss import methods
    from wsss.core.io import atomic_dir, read_id_list, read_label_png, write_gray_png

    if source not in GENERATED_SALIENCY:
        raise ValueError(f"unknown generated saliency source {source!r}; one of {', '.join(GENERATED_SALIENCY)}")
    make = methods.resolve(GENERATED_SALIENCY[source])
    ids = read_id_list(ids_file)
    with atomic_dir(out_dir) as tmp:
        for i in ids:
            write_gray_png(Path(tmp) / f"{i}.png", make(read_label_png(Path(gt_dir) / f"{i}.png"), params))
    log.info("%s saliency: %d maps → %s", source, len(ids), out_dir)
    return len(ids)
