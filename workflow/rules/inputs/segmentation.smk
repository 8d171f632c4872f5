# The segmentation stage's settings, input functions and final targets (its rules: rules/segmentation.smk; kept
# apart because snakemake --lint wants rules and functions in separate files).
DEEPLAB = config["deeplab"]


def crf_maps_input(wildcards):
    """Input function of refine_crf: the shard's maps when the method's unary is `probs`, else nothing."""
    record = methods.method(wildcards.method)
    return map_shard(record.classifier, wildcards.shard) if plan.crf_reads_maps(config, wildcards.method) else []


def crf_masks_input(wildcards):
    """Input function of refine_crf: the shard's pseudo-masks (refine_crf shards its ids as train_aug is
    sharded); released masks come merged."""
    if methods.method(wildcards.method).pseudo_mask:
        return results.path("pseudo_mask_shard", variant="", method=wildcards.method, shard=wildcards.shard)
    return results.path("pseudo_masks", variant="", method=wildcards.method)


def crf_saliency_input(wildcards):
    """Input function of refine_crf: the saliency maps, for a unary that carries its method's gating (cam_sal)."""
    gated = settings.crf_saliency_gated(config, methods.method(wildcards.method))
    return results.path("saliency_maps") if gated else []


def crf_shards(wildcards):
    """Input function of merge_refine_crf: every shard folder of the method's CRF source (wsss.config.plan)."""
    return [results.path("crf_shard", method=plan.crf_source(config, wildcards.method), shard=s) for s in SHARDS]


def seg_masks_dir(method):
    """The masks DeepLab trains on: the prepared ground truth, else the pseudo-masks (CRF-refined
    ones when deeplab.train_on_crf)."""
    if methods.method(method).is_ground_truth:
        return prep("masks")
    return results.path("pseudo_masks_crf" if DEEPLAB["train_on_crf"] else "pseudo_masks", variant="", method=method)


def seg_masks_input(wildcards):
    """Input function of train_segmentation (the ground truth is inside PREP, already an input)."""
    return [] if methods.method(wildcards.method).is_ground_truth else seg_masks_dir(wildcards.method)


STAGE_TARGETS += [
    results.path(name, method=m)
    for m in DEEPLAB["methods"]
    for name in ("deeplab_pred", "deeplab_pred_crf", "deeplab_losses")
]
