"""The method registry: one record per localization classifier and per pseudo-mask source.

The workflow (workflow/rules/common.smk) derives its wildcard constraints, input functions and
per-method parameters from these records, and the package dispatches on them, so a new method is
one module (its pseudo-mask function, and its training loss if it brings a classifier), one
`register_*` call here and its config defaults (docs/architecture.md, "Add a method").

This module imports nothing heavy: the Snakefile imports it while parsing. Functions are named by
dotted path (`"wsss.methods.cam:cam_mask"`) and imported only by the job that calls them.

Out-of-tree methods: every module named in the environment variable WSSS_PLUGINS
(comma-separated) is imported after the built-in records, and may call the `register_*`
functions (tests/test_methods.py registers a toy method that way).
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Classifier:
    """A localization classifier: what train_classifier trains and infer_cams reads out."""

    name: str
    # The head adds a background map (C + 1 maps, background last): its softmax over the present
    # classes + background is stored as `probs` beside the CAMs, so its maps carry probabilities.
    background_map: bool
    # Training reads the saliency maps (the dataset yields them with the same augmentation).
    trains_on_saliency: bool
    # Keys of the `classifier` config section that only this classifier reads; the other
    # classifiers' training params drop them, so changing one never retrains another.
    own_keys: tuple[str, ...]
    # Per-iteration training loss: "module:function" of a factory
    # f(num_classes, section, class_names) -> step(model, batch) -> {"loss": ..., ...}.
    loss: str


@dataclass(frozen=True)
class Method:
    """A source of masks for DeepLab: a pseudo-mask rule on a classifier's maps, or the ground truth."""

    name: str
    label: str                       # human-readable name (figures, report)
    classifier: str | None           # the classifier whose maps it reads (None: the ground truth)
    needs_saliency: bool = False     # its pseudo-mask rule reads the saliency maps
    # "module:function" f(data, saliency, params) -> (H, W) uint8 labels, where data is one
    # loaded map file (wsss.io.load_maps) and params the `pseudo_masks` config section.
    pseudo_mask: str | None = None
    crf_unary: str = "labels"        # default CRF unary (crf.unary): labels | probs
    # Its `probs` CRF unary carries the saliency gating of its pseudo-mask rule: the background score
    # is raised to 1 where saliency < pseudo_masks.saliency_threshold (wsss.crf.probs_from_maps), so
    # the unary's argmax is its pseudo-mask and its CRF rows are its own, not its classifier's.
    crf_saliency_gate: bool = False
    threshold_sweep: bool = False    # the CAM background-threshold sweep table applies to it
    grid: bool = True                # a column of the pseudo-mask qualitative grid
    grid_crf: bool = False           # ... and a column of its CRF refinement
    # Train-split pseudo-mask mIoU (%) of the authors' released VOC 2012 checkpoint, as the official
    # README reports it (halbielee/EPS, README "Pretrained models"): what released_checkpoints.csv
    # compares against.
    published_voc_train_miou: float | None = None

    @property
    def is_ground_truth(self) -> bool:
        return self.classifier is None

    @property
    def maps_have_probs(self) -> bool:
        return self.classifier is not None and CLASSIFIERS[self.classifier].background_map


CLASSIFIERS: dict[str, Classifier] = {}
METHODS: dict[str, Method] = {}


def register_classifier(record: Classifier) -> Classifier:
    CLASSIFIERS[record.name] = record
    return record


def register_method(record: Method) -> Method:
    if record.classifier is not None and record.classifier not in CLASSIFIERS:
        raise ValueError(f"method {record.name!r} reads classifier {record.classifier!r}, which is not "
                         f"registered ({sorted(CLASSIFIERS)})")
    METHODS[record.name] = record
    return record


def resolve(dotted: str) -> Callable:
    """Import "package.module:function" and return the function."""
    module, _, name = dotted.partition(":")
    return getattr(importlib.import_module(module), name)


def pseudo_mask_methods() -> list[str]:
    """Methods that make pseudo-masks from a classifier's maps (every one but the ground truth)."""
    return [m for m, r in METHODS.items() if not r.is_ground_truth]


def method(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; registered: {', '.join(METHODS)}") from None


def classifier(name: str) -> Classifier:
    try:
        return CLASSIFIERS[name]
    except KeyError:
        raise ValueError(f"unknown classifier {name!r}; registered: {', '.join(CLASSIFIERS)}") from None


# ---- per-method parameters: what each job of a method reads from the config ---------------
def classifier_train_params(section: dict, name: str) -> dict:
    """The `classifier` section as train_classifier reads it for classifier `name`: without the
    inference and job-resource keys (changing them must not retrain) and without the keys that
    only other classifiers read (changing EPS's tau must not retrain the CAM baseline)."""
    from wsss.schema import JOB_KEYS

    own = set(classifier(name).own_keys)
    others = {k for c in CLASSIFIERS.values() for k in c.own_keys} - own
    params = {k: v for k, v in section.items() if k not in ("infer", "checkpoint") and k not in others}
    params["train"] = {k: v for k, v in section.get("train", {}).items() if k not in JOB_KEYS}
    return params


def classifier_infer_params(infer: dict, name: str, eps_rule: str = "argmax") -> dict:
    """The `classifier.infer` section for classifier `name`: job-resource keys dropped, and
    `scales` / `flip` resolved where they are given per classifier (a classifier not named gets
    the schema's default, the paper's four scales + flip). With pseudo_masks.eps_rule official, a
    classifier with a background map (eps) computes its maps by the official infer.py protocol."""
    from wsss.schema import JOB_KEYS, section_defaults

    params = {k: v for k, v in infer.items() if k not in JOB_KEYS}
    defaults = section_defaults("classifier.infer")
    for key in ("scales", "flip"):
        if isinstance(params.get(key), dict):
            params[key] = params[key].get(name, defaults[key])
    if eps_rule == "official" and classifier(name).background_map:
        params["official"] = True
    return params


def crf_unary(unary: str | dict, name: str) -> str:
    """crf.unary for method `name`: one value for all, or a mapping; else the method's default."""
    if isinstance(unary, str):
        return unary
    return unary.get(name, method(name).crf_unary)


# ---- the built-in records ------------------------------------------------------------------
register_classifier(Classifier("cam", background_map=False, trains_on_saliency=False, own_keys=("head_dropout",),
                               loss="wsss.losses:cam_step"))
register_classifier(Classifier("eps", background_map=True, trains_on_saliency=True,
                               own_keys=("tau", "lam", "sal_warmup", "skip_unclaimed", "saliency_resize"),
                               loss="wsss.losses:eps_step"))

register_method(Method("cam", "CAM", "cam", pseudo_mask="wsss.methods.cam:cam_mask", threshold_sweep=True,
                       published_voc_train_miou=47.05))
register_method(Method("cam_sal", "CAM × saliency", "cam", needs_saliency=True,
                       pseudo_mask="wsss.methods.cam:cam_sal_mask", crf_saliency_gate=True, grid=False))
register_method(Method("eps", "EPS", "eps", pseudo_mask="wsss.methods.eps:eps_mask", crf_unary="probs",
                       grid_crf=True, published_voc_train_miou=69.22))
register_method(Method("gt", "ground truth", None, grid=False))


def _load_plugins() -> None:
    for name in filter(None, (s.strip() for s in os.environ.get("WSSS_PLUGINS", "").split(","))):
        importlib.import_module(name)


_load_plugins()
