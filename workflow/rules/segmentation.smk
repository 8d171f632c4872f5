# Segmentation stage: the dense CRF on the pseudo-masks (sharded, a process pool per shard),
# DeepLab-v2 trained on the pseudo-masks of {method} (or on the ground truth, `gt`: the upper
# bound) and its predictions on val with and without the CRF.


include: "inputs/segmentation.smk"


rule refine_crf:
    """Dense CRF over one shard of the pseudo-masks of {method}, restricted to each image's classes."""
    input:
        prepared=PREP,
        masks=crf_masks_input,
        maps=crf_maps_input,
        saliency=crf_saliency_input,
    output:
        shard=directory(results.path("crf_shard")),
    log:
        "logs/refine_crf/{method}_{shard}.log",
    benchmark:
        "benchmarks/refine_crf/{method}_{shard}.tsv"
    wildcard_constraints:
        method=MASK_METHODS,
    priority: lambda wildcards: plan.crf_priority(config, wildcards.method)
    conda:
        ENV
    threads: job_threads("refine_crf")
    resources:
        **job_resources("refine_crf"),
    params:
        ids=prep(plan.crf_split(config)),
        sharded_by=prep("train_aug"),
        images=prep("images"),
        labels=prep("labels"),
        crf=lambda wildcards: settings.crf_refinement(config, methods.method(wildcards.method)),
        num_shards=config["shards"],
    script:
        "../scripts/refine_crf.py"


rule merge_refine_crf:
    """Hard-link the CRF shards of {method} (of the method it shares them with: crf_source) into results/pseudo_masks_crf/{method}."""
    input:
        shards=crf_shards,
    output:
        merged=directory(results.path("pseudo_masks_crf")),
    log:
        "logs/merge_refine_crf/{method}.log",
    benchmark:
        "benchmarks/merge_refine_crf/{method}.tsv"
    wildcard_constraints:
        method=MASK_METHODS,
    priority: lambda wildcards: plan.crf_priority(config, wildcards.method)
    conda:
        ENV
    threads: job_threads("merge_refine_crf")
    resources:
        **job_resources("merge_refine_crf"),
    script:
        "../scripts/merge_shards.py"


rule train_segmentation:
    """DeepLab-v2 on the train_aug masks of {method} (its pseudo-masks, or the ground truth for gt)."""
    input:
        prepared=PREP,
        masks=seg_masks_input,
        weights=weights_record(DEEPLAB["init_weights"]),
    output:
        model=results.path("deeplab_model"),
        loss=results.path("deeplab_losses"),
    log:
        "logs/train_segmentation/{method}.log",
    benchmark:
        "benchmarks/train_segmentation/{method}.tsv"
    priority: lambda wildcards: plan.deeplab_priority(wildcards.method)
    conda:
        ENV
    threads: job_threads("train_segmentation")
    resources:
        **job_resources("train_segmentation"),
        gpu=GPU,
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
    script:
        "../scripts/train_segmentation.py"


rule infer_segmentation:
    """DeepLab predictions on val at full size (deeplab.infer_scales, infer_flip), then the CRF."""
    input:
        prepared=PREP,
        model=rules.train_segmentation.output.model,
    output:
        pred=directory(results.path("deeplab_pred")),
        pred_crf=directory(results.path("deeplab_pred_crf")),
    log:
        "logs/infer_segmentation/{method}.log",
    benchmark:
        "benchmarks/infer_segmentation/{method}.tsv"
    priority: lambda wildcards: plan.deeplab_priority(wildcards.method)
    conda:
        ENV
    threads: job_threads("infer_segmentation")
    resources:
        **job_resources("infer_segmentation"),
        gpu=GPU,
    params:
        ids=prep("val"),
        images=prep("images"),
        inference=settings.deeplab_inference(config),
        device=config["device"],
    script:
        "../scripts/infer_segmentation.py"
