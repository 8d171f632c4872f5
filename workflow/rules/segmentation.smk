# Segmentation stage: the dense CRF on the pseudo-masks (sharded, a process pool per shard),
# DeepLab-v2 trained on the pseudo-masks of {method} (or the ground truth, `gt`), and its
# predictions on val with and without the CRF.


rule refine_crf:
    """Dense CRF over one shard of the pseudo-masks of {method} (the ids of crf_ids), restricted to each image's classes."""
    input:
        prepared=PREP,
        masks="results/pseudo_masks/{method}",
        maps=crf_maps_input,
        # the saliency maps, for a unary that carries its method's saliency gating (cam_sal)
        saliency=lambda wildcards: "results/saliency/maps" if crf_saliency_gated(wildcards.method) else [],
    output:
        shard=directory("results/shards/pseudo_masks_crf/{method}/{shard}"),
    wildcard_constraints:
        method=MASK_METHODS,
    params:
        ids=crf_ids(),
        images=prep("images"),
        labels=prep("labels"),
        crf=crf_params,
        # Background score of a `probs` unary built from CAMs: the CAM pseudo-mask threshold.
        bg_threshold=config["pseudo_masks"]["threshold"],
        # The gating threshold of a saliency-gated unary; None for the others, so changing it reruns no other CRF.
        saliency_threshold=lambda wildcards: PM["saliency_threshold"] if crf_saliency_gated(wildcards.method) else None,
        num_shards=config["shards"],
    log:
        "logs/refine_crf/{method}_{shard}.log",
    benchmark:
        "benchmarks/refine_crf/{method}_{shard}.tsv"
    conda:
        ENV
    threads: CRF["processes"]
    resources:
        mem_mb=CRF["mem_mb"],
        runtime=CRF["runtime"],
    priority: crf_priority
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
    threads: 1
    resources:
        mem_mb=500,
        runtime=10,
    priority: crf_priority
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
        deeplab=deeplab_train_params(),
        seed=config["seed"],
        device=config["device"],
    log:
        "logs/train_segmentation/{method}.log",
    benchmark:
        "benchmarks/train_segmentation/{method}.tsv"
    conda:
        ENV
    threads: DEEPLAB["threads"]
    resources:
        mem_mb=DEEPLAB["mem_mb"],
        runtime=DEEPLAB["runtime"],
        gpu=GPU,
    priority: deeplab_priority
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
        crf=without_job_keys(CRF),
        scales=DEEPLAB["infer_scales"],
        flip=DEEPLAB["infer_flip"],
        device=config["device"],
    log:
        "logs/infer_segmentation/{method}.log",
    benchmark:
        "benchmarks/infer_segmentation/{method}.tsv"
    conda:
        ENV
    threads: DEEPLAB["infer"]["threads"]
    resources:
        mem_mb=DEEPLAB["infer"]["mem_mb"],
        runtime=DEEPLAB["infer"]["runtime"],
        gpu=GPU,
    priority: deeplab_priority
    script:
        "../scripts/infer_segmentation.py"
