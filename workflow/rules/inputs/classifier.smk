# The classifier stage's settings, input functions and final targets (its rules: rules/classifier.smk; kept
# apart because snakemake --lint wants rules and functions in separate files).
CLS = config["classifier"]
# Classifiers given as files (classifier.checkpoint) are imported; the others are trained.
IMPORTED = plan.imported_classifiers(config)
TRAINED_RE = "|".join(c for c in methods.CLASSIFIERS if c not in IMPORTED) or NONE
IMPORTED_RE = "|".join(IMPORTED) or NONE
# make_pseudo_masks runs the methods with a pseudo-mask rule; import_released_masks the released ones.
RULE_MASKS_RE = "|".join(m for m, r in methods.METHODS.items() if r.pseudo_mask) or NONE
RELEASED_RE = "|".join(m for m, r in methods.METHODS.items() if r.released) or NONE
SWEEP_RE = "|".join(m for m, r in methods.METHODS.items() if r.threshold_sweep) or NONE


def variant_saliency(variant):
    """The saliency maps a run trains on: the workflow's, or a saliency ablation point's own."""
    source = ablation.point_saliency(variant)
    return results.path("ablation_saliency", source=source) if source else results.path("saliency_maps")


def classifier_saliency_input(wildcards):
    """Input function of train_classifier: the saliency maps, for a classifier that trains on them."""
    trains_on = methods.classifier(wildcards.classifier).trains_on_saliency
    return variant_saliency(wildcards.variant) if trains_on else []


def classifier_training(wildcards):
    """Params of train_classifier: what this classifier's training reads, with an ablation point's setting."""
    section = ablation.point_section(CLS, wildcards.variant)
    return settings.classifier_training(section, methods.classifier(wildcards.classifier))


def cams_shards(wildcards):
    """Input function of merge_cams: every shard folder of one classifier's maps."""
    return [
        results.path("cam_shard", variant=wildcards.variant, classifier=wildcards.classifier, shard=s) for s in SHARDS
    ]


def pseudo_mask_shards(wildcards):
    """Input function of merge_pseudo_masks: every shard folder of one method's pseudo-masks."""
    return [
        results.path("pseudo_mask_shard", variant=wildcards.variant, method=wildcards.method, shard=s) for s in SHARDS
    ]


def map_shard(classifier, shard, variant=""):
    """One shard folder of a classifier's map files."""
    return results.path("cam_shard", variant=variant, classifier=classifier, shard=shard)


def map_shard_output(path):
    """infer_cams' output: deleted once its last consumer is done, unless classifier.infer.keep_maps."""
    return directory(path) if plan.keep_maps(config) else temp(directory(path))


def shard_maps_input(wildcards):
    """Input function of the per-shard readers of the maps (make_pseudo_masks, cam_threshold_sweep_shard):
    the shard of their method's classifier, so a map shard can go once its own readers are done."""
    classifier = methods.method(wildcards.method).classifier
    return map_shard(classifier, wildcards.shard, wildcards.get("variant", ""))


def map_window_input(wildcards):
    """Input function of infer_cams: with keep_maps false, the outputs of every reader of the configured
    run's shard s - maps_in_flight (wsss.config.plan.map_window), so that few map shards are on disk."""
    back = plan.map_window(config, int(wildcards.shard))
    if back is None or wildcards.variant:
        return []
    readers = plan.map_consumers(config, wildcards.classifier)
    return (
        [results.path("pseudo_mask_shard", variant="", method=m, shard=back) for m in readers["pseudo"]]
        + [results.path("threshold_sweep_shard", method=m, shard=back) for m in readers["sweep"]]
        + [results.path("crf_shard", method=m, shard=back) for m in readers["crf"]]
    )


def sweep_shards(wildcards):
    """Input function of cam_threshold_sweep: every shard's counts."""
    return [results.path("threshold_sweep_shard", method=wildcards.method, shard=s) for s in SHARDS]


def pseudo_mask_saliency_input(wildcards):
    """The saliency maps, for a method whose pseudo-mask rule reads them (cam_sal); a variant's own."""
    return variant_saliency(wildcards.variant) if methods.method(wildcards.method).needs_saliency else []


def released_checkpoints_input(wildcards):
    """Input function of released_checkpoints: the table compares with what the authors published
    for this dataset, so a source without published numbers stops the plan saying so."""
    if not SOURCE.released_train_miou:
        raise WorkflowError(
            f"{results.path('released_checkpoints')} compares imported classifiers with the authors' published "
            f"numbers for the dataset; data source {SOURCE.name!r} has none (wsss.data.sources)"
        )
    return results.path("table", table="miou")


def released_masks_input(wildcards):
    """Input function of import_released_masks: the archive and, from the weights stage, its record."""
    archive = settings.released_archive(config)
    return {"archive": archive, "verified": weights_record(archive)}


def chain_priority(wildcards):
    """Jobs downstream of the saliency-trained classifier first (wsss.config.plan)."""
    name = wildcards.get("classifier")
    return plan.chain_priority(name) if name is not None else plan.method_priority(wildcards.method)


STAGE_TARGETS += [results.path("pseudo_masks", variant="", method=m) for m in config["methods"]]
# Kept maps are merged into results/cams/<classifier> (hard links); otherwise each shard goes once read.
STAGE_TARGETS += [
    results.path("cams", variant="", classifier=c) for c in plan.used_classifiers(config) if plan.keep_maps(config)
]
STAGE_TARGETS += [
    results.path("threshold_sweep", method=m) for m in config["methods"] if methods.method(m).threshold_sweep
]
