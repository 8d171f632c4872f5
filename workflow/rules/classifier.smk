# Classifier stage: the registered classifiers ({classifier}: cam, eps), their multi-scale
# localization maps (sharded), the pseudo-masks of each method ({method}: cam, cam_sal, eps) and
# the CAM threshold sweep. {variant} is "" for the configured run, or an ablation's grid point.


include: "inputs/classifier.smk"


rule train_classifier:
    """Train the {classifier} classifier with its registered loss (cam: L_cls; eps: L_cls + L_sal) on train_aug (resumable); {variant} is an ablation's grid point."""
    input:
        prepared=PREP,
        saliency=classifier_saliency_input,
        weights=weights_record(CLS["pretrained"]),
    output:
        model=results.path("classifier_model"),
        losses=results.path("classifier_losses"),
    log:
        "logs/train_classifier/{variant}{classifier}.log",
    benchmark:
        "benchmarks/train_classifier/{variant}{classifier}.tsv"
    wildcard_constraints:
        classifier=TRAINED_RE,
    # EPS's training, after the saliency maps, is the critical path of a run: before the baseline's jobs.
    priority: 10
    conda:
        ENV
    threads: job_threads("train_classifier")
    resources:
        **job_resources("train_classifier"),
        gpu=GPU,
    params:
        training=classifier_training,
        images=prep("images"),
        labels=prep("labels"),
        ids=prep("train_aug"),
        seed=config["seed"],
        device=config["device"],
        checkpoint="resources/checkpoints/classifier/{variant}{classifier}.pt",
    script:
        "../scripts/train_classifier.py"


rule import_classifier:
    """Use classifier.checkpoint[{classifier}] (a model file, or an official EPS checkpoint_cls.pth) instead of training."""
    input:
        checkpoint=lambda wildcards: CLS["checkpoint"][wildcards.classifier],
        verified=lambda wildcards: weights_record(CLS["checkpoint"][wildcards.classifier]),
    output:
        model=results.path("classifier_model", variant=""),
    log:
        "logs/import_classifier/{classifier}.log",
    benchmark:
        "benchmarks/import_classifier/{classifier}.tsv"
    wildcard_constraints:
        classifier=IMPORTED_RE,
    conda:
        ENV
    threads: job_threads("import_classifier")
    resources:
        **job_resources("import_classifier"),
    params:
        classes=config["dataset"]["classes"],
    script:
        "../scripts/import_classifier.py"


rule infer_cams:
    """Multi-scale + flip localization maps of the {classifier} classifier for one shard of train_aug."""
    input:
        model=results.path("classifier_model"),
        prepared=PREP,
        window=map_window_input,
    output:
        maps=map_shard_output(results.path("cam_shard")),
    log:
        "logs/infer_cams/{variant}{classifier}_{shard}.log",
    benchmark:
        "benchmarks/infer_cams/{variant}{classifier}_{shard}.tsv"
    priority: chain_priority
    conda:
        ENV
    threads: job_threads("infer_cams")
    resources:
        **job_resources("infer_cams"),
        gpu=GPU,
    params:
        images=prep("images"),
        labels=prep("labels"),
        ids=prep("train_aug"),
        infer=lambda wildcards: settings.cam_inference(config, methods.classifier(wildcards.classifier)),
        num_shards=config["shards"],
        device=config["device"],
    script:
        "../scripts/infer_cams.py"


rule merge_cams:
    """Hard-link the map shards of {classifier} into results/cams/{classifier}."""
    input:
        shards=cams_shards,
    output:
        maps=directory(results.path("cams")),
    log:
        "logs/merge_cams/{variant}{classifier}.log",
    benchmark:
        "benchmarks/merge_cams/{variant}{classifier}.tsv"
    priority: chain_priority
    conda:
        ENV
    threads: job_threads("merge_cams")
    resources:
        **job_resources("merge_cams"),
    script:
        "../scripts/merge_shards.py"


rule make_pseudo_masks:
    """Pseudo-masks of {method} by its registered rule (wsss.methods) for one shard of the train_aug ids, as VOC-palette PNGs."""
    input:
        cams=shard_maps_input,
        saliency=pseudo_mask_saliency_input,
        prepared=PREP,
    output:
        masks=directory(results.path("pseudo_mask_shard")),
    log:
        "logs/make_pseudo_masks/{variant}{method}_{shard}.log",
    benchmark:
        "benchmarks/make_pseudo_masks/{variant}{method}_{shard}.tsv"
    wildcard_constraints:
        method=RULE_MASKS_RE,
    priority: chain_priority
    conda:
        ENV
    threads: job_threads("make_pseudo_masks")
    resources:
        **job_resources("make_pseudo_masks"),
    params:
        ids=prep("train_aug"),
        pseudo_masks=lambda wildcards: settings.pseudo_mask_params(config, methods.method(wildcards.method)),
        num_shards=config["shards"],
    script:
        "../scripts/make_pseudo_masks.py"


rule merge_pseudo_masks:
    """Hard-link the pseudo-mask shards of {method} into results/pseudo_masks/{method}."""
    input:
        shards=pseudo_mask_shards,
    output:
        masks=directory(results.path("pseudo_masks")),
    log:
        "logs/merge_pseudo_masks/{variant}{method}.log",
    benchmark:
        "benchmarks/merge_pseudo_masks/{variant}{method}.tsv"
    wildcard_constraints:
        method=RULE_MASKS_RE,
    priority: chain_priority
    conda:
        ENV
    threads: job_threads("merge_pseudo_masks")
    resources:
        **job_resources("merge_pseudo_masks"),
    script:
        "../scripts/merge_shards.py"


rule import_released_masks:
    """The authors' released pseudo-masks as {method}'s masks for every train_aug id, each checked as a label PNG."""
    input:
        unpack(released_masks_input),
        prepared=PREP,
    output:
        masks=directory(results.path("pseudo_masks", variant="")),
    log:
        "logs/import_released_masks/{method}.log",
    benchmark:
        "benchmarks/import_released_masks/{method}.tsv"
    wildcard_constraints:
        method=RELEASED_RE,
    conda:
        ENV
    threads: job_threads("import_released_masks")
    resources:
        **job_resources("import_released_masks"),
    params:
        images=prep("images"),
        ids=prep("train_aug"),
        num_classes=len(config["dataset"]["classes"]),
        fix=settings.released_archive_fix(config),
    script:
        "../scripts/import_released_masks.py"


rule cam_threshold_sweep_shard:
    """Confusion counts of {method}'s thresholded CAM pseudo-masks for each background threshold, over one shard's maps."""
    input:
        cams=shard_maps_input,
        prepared=PREP,
    output:
        counts=results.path("threshold_sweep_shard"),
    log:
        "logs/cam_threshold_sweep_shard/{method}_{shard}.log",
    benchmark:
        "benchmarks/cam_threshold_sweep_shard/{method}_{shard}.tsv"
    wildcard_constraints:
        method=SWEEP_RE,
    # a reader of the map shard: before new shards are inferred (wsss.config.plan)
    priority: chain_priority
    conda:
        ENV
    threads: job_threads("cam_threshold_sweep_shard")
    resources:
        **job_resources("cam_threshold_sweep_shard"),
    params:
        ids=prep(config["evaluation"]["pseudo_mask_split"]),
        sharded_by=prep("train_aug"),
        gt=prep("masks"),
        thresholds=settings.threshold_sweep(config)["thresholds"],
        num_classes=len(config["dataset"]["classes"]) + 1,
        num_shards=config["shards"],
    script:
        "../scripts/cam_threshold_sweep_shard.py"


rule cam_threshold_sweep:
    """mIoU of {method}'s thresholded CAM pseudo-masks against ground truth for each background threshold."""
    input:
        shards=sweep_shards,
    output:
        table=results.path("threshold_sweep"),
    log:
        "logs/cam_threshold_sweep/{method}.log",
    benchmark:
        "benchmarks/cam_threshold_sweep/{method}.tsv"
    wildcard_constraints:
        method=SWEEP_RE,
    conda:
        ENV
    threads: job_threads("cam_threshold_sweep")
    resources:
        **job_resources("cam_threshold_sweep"),
    params:
        **settings.threshold_sweep(config),
        num_classes=len(config["dataset"]["classes"]) + 1,
    script:
        "../scripts/cam_threshold_sweep.py"


rule released_checkpoints:
    """Pseudo-mask mIoU of the imported (released) classifiers beside the authors' published numbers for this dataset."""
    input:
        table=released_checkpoints_input,
    output:
        table=results.path("released_checkpoints"),
    log:
        "logs/released_checkpoints/released_checkpoints.log",
    benchmark:
        "benchmarks/released_checkpoints/released_checkpoints.tsv"
    conda:
        ENV
    threads: job_threads("released_checkpoints")
    resources:
        **job_resources("released_checkpoints"),
    params:
        checkpoints=CLS["checkpoint"],
        published=SOURCE.released_train_miou,
    script:
        "../scripts/released_checkpoints.py"
