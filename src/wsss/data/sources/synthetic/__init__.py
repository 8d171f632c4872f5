"""Data source `synthetic`: the embedded benchmark, generated in VOC + SBD's raw layout and then
prepared by the voc source's own code (rules: workflow/rules/sources/synthetic.smk; generation:
wsss.data.sources.synthetic.generate)."""

from __future__ import annotations

from wsss.data.sources.registry import Source, register_source
from wsss.data.sources.voc import VOC_RAW

SYNTHETIC_CLASSES = ("train", "boat", "ball", "box", "kite", "star")

register_source(Source("synthetic", "synthetic.smk", SYNTHETIC_CLASSES, boundaries=True,
                       scene_labels="own", saliency_set="own", heldout=True,
                       hints=tuple((p, "synthesize_dataset", "dataset.source synthetic")
                                   for p in (*VOC_RAW, r"(^|/)DUTS-TR(/|$)"))))
