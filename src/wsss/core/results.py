"""The results layout, stated once: every path under results/ that a rule writes, by name, with the
rule that regenerates it. The rule files build their outputs, inputs and targets from here
(`path`), the rerun hints of error messages match a path against it (`rerun_rules`), and the tests
look files up by name, as every stage reads the prepared layout through wsss.data.layout.

A pattern holds Snakemake's wildcards. `{variant}` is "" for the configured run or
`ablation/<name>-<value>/` for a grid point of an ablation (wsss.stages.ablation), which reruns the
classifier stage's rules under its own folder.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    pattern: str
    # (rule, when) that regenerate it: the rule to force-rerun (the shards' job for a merged folder,
    # whose merge only links what they wrote); `when` names the setting in which that rule is the one
    rules: tuple[tuple[str, str], ...]


def _entry(pattern: str, *rules: str | tuple[str, str]) -> Entry:
    return Entry(pattern, tuple(r if isinstance(r, tuple) else (r, "") for r in rules))


LAYOUT: dict[str, Entry] = {
    # saliency
    "saliency_model": _entry("results/saliency/pfan/model.pt", "train_saliency"),
    "saliency_losses": _entry("results/saliency/pfan/loss.csv", "train_saliency"),
    "saliency_shard": _entry("results/shards/saliency/{shard}", "infer_saliency"),
    "saliency_maps": _entry("results/saliency/maps", ("infer_saliency", "saliency.source pfan"),
                            ("import_precomputed_saliency", "saliency.source precomputed")),
    "saliency_table": _entry("results/tables/saliency.csv", "evaluate_saliency"),
    # classifiers, their maps and the pseudo-masks
    "classifier_model": _entry("results/{variant}classifier/{classifier}/model.pt", "train_classifier"),
    "classifier_losses": _entry("results/{variant}classifier/{classifier}/loss.csv", "train_classifier"),
    "cam_shard": _entry("results/{variant}shards/cams/{classifier}/{shard}", "infer_cams"),
    "cams": _entry("results/{variant}cams/{classifier}", "infer_cams"),
    "pseudo_mask_shard": _entry("results/{variant}shards/pseudo_masks/{method}/{shard}", "make_pseudo_masks"),
    "pseudo_masks": _entry("results/{variant}pseudo_masks/{method}", "make_pseudo_masks"),
    "threshold_sweep_shard": _entry("results/shards/cam_thresholds/{method}/{shard}.npz", "cam_threshold_sweep_shard"),
    "threshold_sweep": _entry("results/tables/{method}_thresholds.csv", "cam_threshold_sweep"),
    "released_checkpoints": _entry("results/tables/released_checkpoints.csv", "released_checkpoints"),
    # the dense CRF and DeepLab
    "crf_shard": _entry("results/shards/pseudo_masks_crf/{method}/{shard}", "refine_crf"),
    "pseudo_masks_crf": _entry("results/pseudo_masks_crf/{method}", "refine_crf"),
    "deeplab_model": _entry("results/deeplab/{method}/model.pt", "train_segmentation"),
    "deeplab_losses": _entry("results/deeplab/{method}/loss.csv", "train_segmentation"),
    "deeplab_pred": _entry("results/deeplab/{method}/pred", "infer_segmentation"),
    "deeplab_pred_crf": _entry("results/deeplab/{method}/pred_crf", "infer_segmentation"),
    # evaluation: per (stage, method), then the tables and figures
    "eval_shard": _entry("results/{variant}eval/{stage}/{method}/shards/{kind}_{shard}.npz", "evaluate_shard"),
    "eval_matrix": _entry("results/{variant}eval/{stage}/{method}/confusion_matrix.npz", "evaluate_miou"),
    "eval_miou": _entry("results/{variant}eval/{stage}/{method}/miou.json", "evaluate_miou"),
    "eval_miou_per_image": _entry("results/{variant}eval/{stage}/{method}/miou_per_image.npz", "evaluate_miou"),
    "eval_boundary": _entry("results/eval/{stage}/{method}/boundary.json", "evaluate_boundary"),
    "eval_boundary_per_image": _entry("results/eval/{stage}/{method}/boundary_per_image.npz", "evaluate_boundary"),
    "eval_confusion_ratio": _entry("results/eval/{stage}/{method}/confusion_ratio.json", "evaluate_confusion_ratio"),
    "eval_confusion_ratio_per_image": _entry("results/eval/{stage}/{method}/confusion_ratio_per_image.npz",
                                             "evaluate_confusion_ratio"),
    "table": _entry("results/tables/{table}.csv", "table_{table}"),
    "miou_per_class": _entry("results/tables/miou_per_class.csv", "table_miou"),
    "seeds_runs": _entry("results/tables/seeds_runs.csv", "table_seeds"),
    "figure": _entry("results/figures/{table}.png", "figure_table"),
    "figure_qualitative": _entry("results/figures/qualitative_{split}.png", "figure_qualitative"),
    "figure_losses": _entry("results/figures/losses.png", "figure_losses"),
    "headline": _entry("results/report/headline.html", "report_headline"),
    # `make seeds` writes these (no rule: wsss_dev.seeds); table_seeds reads them
    "seeds_cells": _entry("results/bench/seeds.csv"),
    "seeds_summary": _entry("results/bench/seeds_summary.csv"),
    # ablations
    "ablation_saliency": _entry("results/ablation/saliency_maps/{source}", "ablation_saliency"),
    "ablation_table": _entry("results/tables/ablation_{ablation}.csv", "table_ablation"),
    "ablation_figure": _entry("results/figures/ablation_{ablation}.png", "figure_ablation"),
}

# Wildcards whose values may hold a "/" (the variant folder) or be empty; the others are one name.
_WILDCARD_RE = {"variant": r"(?:ablation/[^/]+-[^/]+/)?"}


class _Partial(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def path(name: str, **wildcards) -> str:
    """The path of entry `name` with `wildcards` filled in; the others stay Snakemake wildcards."""
    return LAYOUT[name].pattern.format_map(_Partial(wildcards))


def _regex(pattern: str) -> re.Pattern:
    """A pattern as a regex matching it, or anything inside it, anywhere in a path."""
    parts = []
    for literal, field, _, _ in string.Formatter().parse(pattern):
        parts.append(re.escape(literal))
        if field is not None:
            parts.append(f"(?P<{field}>{_WILDCARD_RE.get(field, '[^/]+')})")
    return re.compile(r"(^|/)" + "".join(parts) + r"(/|$)")


_COMPILED = [(entry, _regex(entry.pattern), len(re.sub(r"\{[^}]*\}", "", entry.pattern)))
             for entry in LAYOUT.values()]


def rerun_rules(path_: str) -> list[tuple[str, str]] | None:
    """[(rule, when)] that regenerate `path_` (a result file, or a file inside a result folder), the
    rule names' wildcards filled from the path (results/tables/miou.csv: table_miou); [] for a result
    no rule writes; None when the path is not a result. The most specific entry wins (the longest
    literal part: results/tables/ablation_tau.csv is an ablation table, not a `{table}`)."""
    matches = [(length, entry, m) for entry, regex, length in _COMPILED if (m := regex.search(path_))]
    if not matches:
        return None
    _, entry, m = max(matches, key=lambda t: t[0])
    return [(rule.format_map(_Partial(m.groupdict())), when) for rule, when in entry.rules]
