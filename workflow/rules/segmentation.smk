# Segmentation stage: the dense CRF on the pseudo-masks (sharded, a process pool per shard),
# DeepLab-v2 trained on the pseudo-masks of {method} (or on the ground truth, `gt`: the upper
# bound) and its predictions on val with and without the CRF.
DEEPLAB = config["deeplab"]


def crf_maps_input(wildcards):
    """Input function of refine_crf: the maps folder when the method's unary is `probs`, else nothing."""
    record = methods.method(wildcards.method)
    return classifier_maps(wildcards.method) if settings.crf_unary(config, record) == "probs" else []


def crf_shards(wildcards):
    """Input function of merge_refine_crf: every shard folder of the method's CRF source (wsss.config.plan)."""
    return [f"results/shards/pseudo_masks_crf/{plan.crf_source(config, wildcards.method)}/{s}" for s in SHARDS]


def seg_masks_dir(method):
    """The masks DeepLab trains on: the prepared ground truth, else the pseudo-masks (CRF-refined
    ones when deeplab.train_on_crf)."""
    if methods.method(method).is_ground_truth:
        return prep("masks")
    return f"results/pseudo_masks{'_crf' if DEEPLAB['train_on_crf'] else ''}/{method}"


def seg_masks_input(wildcards):
    """Input function of train_segmentation (the ground truth is inside PREP, already an input)."""
    return [] if methods.method(wildcards.method).is_ground_truth else seg_masks_dir(wildcards.method)


STAGE_TARGETS += [f"results/deeplab/{m}/{out}" for m in DEEPLAB["methods"] for out in ("pred", "pred_crf", "loss.csv")]


rule refine_crf:
    """Dense CRF over one shard of the pseudo-masks of {method}, restricted to each image's classes."""
    input:
        prepared=PREP,
        masks="results/pseudo_masks/{method}",
        maps=crf_maps_input,
    output:
        shard=directory("results/shards/pseudo_masks_crf/{method}/{shard}"),
    wildcard_constraints:
        method=MASK_METHODS,
    params:
        ids=prep(plan.crf_split(config)),
        images=prep("images"),
        labels=prep("labels"),
        crf=lambda wildcards: settings.crf_refinement(config, methods.method(wildcards.method)),
        num_shards=config["shards"],
    log:
        "logs/refine_crf/{method}_{shard}.log",
    benchmark:
        "benchmarks/refine_crf/{method}_{shard}.tsv"
    conda:
        ENV
    threads: job_threads("refine_crf")
    resources:
        **job_resources("refine_crf"),
    priority: lambda wildcards: plan.crf_priority(config, wildcards.method)
    script:
        "../scripts/refine_crf.py"


rule merge_refine_crf:
    """Hard-link the CRF shards of {method} (of the method it shares them with: crf_source) into results/pseudo_masks_crf/{method}."""
    input:
        shards=crf_shards,
    output:
        merged=directory("results/pseudo_masks_crf/{method}"),
    wildcard_constraints:
        method=MASK_METHODS,
    log:
        "logs/merge_refine_crf/{method}.log",
    benchmark:
        "benchmarks/merge_refine_crf/{method}.tsv"
    conda:
        ENV
    threads: job_threads("merge_refine_crf")
    resources:
        **job_resources("merge_refine_crf"),
    priority: lambda wildcards: plan.crf_priority(config, wildcards.method)
    script:
        "../scripts/merge_shards.py"


rule train_segmentation:
    """DeepLab-v2 on the train_aug masks of {method} (its pseudo-masks, or the ground truth for gt)."""
    input:
        prepared=PREP,
        masks=seg_masks_input,
        weights=weights_record(DEEPLAB["init_weights"]),
    output:
        model="results/deeplab/{method}/model.pt",
        loss="results/deeplab/{method}/loss.csv",
    params:
        ids=prep("train_aug"),
        images=prep("images"),
        labels=prep("labels"),
        masks_dir=lambda wildcards: seg_masks_dir(wildcards.method),
        # Resumable state: not an output, so it survives a failed job (removed by hand to restart).
        checkpoint="resources/checkpoints/deeplab/{method}.pt",
        loss_csv="resources/checkpoints/deeplab/{method}.loss.csv",
        deeplab=settings.deeplab_training(config),
        seed=config["seed"],
        device=config["device"],
    log:
        "logs/train_segmentation/{method}.log",
    benchmark:
        "benchmarks/train_segmentation/{method}.tsv"
    conda:
        ENV
    threads: job_threads("train_segmentation")
    resources:
        **job_resources("train_segmentation"),
        gpu=GPU,
    priority: lambda wildcards: plan.deeplab_priority(wildcards.method)
    script:
        "../scripts/train_segmentation.py"


rule infer_segmentation:
    """DeepLab predictions on val at full size (deeplab.infer_scales, infer_flip), then the CRF."""
    input:
        prepared=PREP,
        model=rules.train_segmentation.output.model,
    output:
        pred=directory("results/deeplab/{method}/pred"),
        pred_crf=directory("results/deeplab/{method}/pred_crf"),
    params:
        ids=prep("val"),
        images=prep("images"),
        inference=settings.deeplab_inference(config),
        device=config["device"],
    log:
        "logs/infer_segmentation/{method}.log",
    benchmark:
        "benchmarks/infer_segmentation/{method}.tsv"
    conda:
        ENV
    threads: job_threads("infer_segmentation")
    resources:
        **job_resources("infer_segmentation"),
        gpu=GPU,
    priority: lambda wildcards: plan.deeplab_priority(wildcards.method)
    script:
        "../scripts/infer_segmentation.py"
