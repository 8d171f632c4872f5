"""The method registry: one record per localization classifier and per pseudo-mask source.

A method is a self-contained unit: its module (wsss.methods.cam, wsss.methods.eps) registers its
records, holds its pseudo-mask rule and names its training loss; the workflow derives wildcard
constraints, inputs and per-job settings from the records, and the package receives records, not
names: a name is looked up once, where it enters (a wildcard, a config value, a model file).

Functions are named by dotted path ("wsss.methods.cam:cam_mask") and imported only by the job that
calls them, so importing the registry stays light (the Snakefile does it while parsing).
"""

from __future__ import annotations

import dataclasses
import importlib
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
    # "module:function" of its per-iteration loss factory
    # f(num_classes, settings, class_names) -> step(model, batch) -> {"loss": ..., ...}.
    loss: str
    # Dataclass of the `classifier` config keys only this classifier reads (its defaults from the
    # schema); the other classifiers' training settings leave them out, so changing EPS's tau
    # never retrains the CAM baseline.
    settings: type | None = None

    @property
    def own_keys(self) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(self.settings)) if self.settings else ()


@dataclass(frozen=True)
class Method:
    """A source of masks for DeepLab: a pseudo-mask rule on a classifier's maps, or the ground truth."""

    name: str
    label: str                       # human-readable name (figures, report)
    classifier: str | None           # the classifier whose maps it reads (None: the ground truth)
    needs_saliency: bool = False     # its pseudo-mask rule reads the saliency maps
    # "module:function" f(data, saliency, params) -> (H, W) uint8 labels, where data is one
    # loaded map file (wsss.core.io.load_maps) and params its `mask_keys` of `pseudo_masks`.
    pseudo_mask: str | None = None
    mask_keys: tuple[str, ...] = ()  # the `pseudo_masks` config keys its rule reads
    crf_unary: str = "labels"        # default CRF unary (crf.unary): labels | probs
    # Its `probs` CRF unary carries the saliency gating of its pseudo-mask rule: the background score
    # is raised to 1 where saliency < pseudo_masks.saliency_threshold (wsss.stages.crf.probs_from_maps),
    # so the unary's argmax is its pseudo-mask and its CRF rows are its own, not its classifier's.
    crf_saliency_gate: bool = False
    threshold_sweep: bool = False    # the CAM background-threshold sweep table applies to it
    grid: bool = True                # a column of the pseudo-mask qualitative grid
    grid_crf: bool = False           # ... and a column of its CRF refinement
    # Its masks are the authors' released pseudo-masks of the dataset (pseudo_masks.released_archive,
    # else the data source's release), imported by rule import_released_masks: no classifier.
    released: bool = False

    @property
    def is_ground_truth(self) -> bool:
        return self.classifier is None and not self.released


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
    """Methods whose masks are pseudo-masks (every one but the ground truth): made from a
    classifier's maps, or released by the authors."""
    return [m for m, r in METHODS.items() if not r.is_ground_truth]


def table_order() -> list[str]:
    """Methods in the order tables show them: registration order, the ground truth (the upper
    bound) last."""
    return sorted(METHODS, key=lambda m: METHODS[m].is_ground_truth)


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


def maps_have_probs(record: Method) -> bool:
    """The method's classifier stores `probs` (a background map's softmax) beside its CAMs."""
    return record.classifier is not None and CLASSIFIERS[record.classifier].background_map
