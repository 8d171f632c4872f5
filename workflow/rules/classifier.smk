# Classifier stage: the registered classifiers ({classifier}: cam, eps), their multi-scale
# localization maps (sharded), the pseudo-masks of each method ({method}: cam, cam_sal, eps) and
# the tables that show their quality on the ground truth before the evaluation stage runs
# (cam_thresholds.csv, pseudo_mask_miou.csv).


rule train_classifier:
    """Train the {classifier} classifier with its registered loss (cam: L_cls; eps: L_cls + L_sal) on train_aug (resumable); {variant} is an ablation's grid point."""
    input:
        prepared=PREP,
        saliency=classifier_saliency_input,
        weights=weights_record(CLS["pretrained"]),
    output:
        model="results/{variant}classifier/{classifier}/model.pt",
        losses="results/{variant}classifier/{classifier}/loss.csv",
    params:
        section=classifier_train_section,
        images=prep("images"),
        labels=prep("labels"),
        ids=prep("train_aug"),
        seed=config["seed"],
        device=config["device"],
        checkpoint="resources/checkpoints/classifier/{variant}{classifier}.pt",
    wildcard_constraints:
        classifier=TRAINED_RE,
    log:
        "logs/train_classifier/{variant}{classifier}.log",
    benchmark:
        "benchmarks/train_classifier/{variant}{classifier}.tsv"
    conda:
        ENV
    threads: CLS["train"]["threads"]
    resources:
        mem_mb=CLS["train"]["mem_mb"],
        runtime=CLS["train"]["runtime"],
        gpu=GPU,
    # EPS's training, after the saliency maps, is the critical path of a run: before the baseline's jobs.
    priority: 10
    script:
        "../scripts/train_classifier.py"


rule import_classifier:
    """Use classifier.checkpoint[{classifier}] (a model file, or an official EPS checkpoint_cls.pth) instead of training."""
    input:
        checkpoint=lambda wildcards: CLS["checkpoint"][wildcards.classifier],
        verified=lambda wildcards: weights_record(CLS["checkpoint"][wildcards.classifier]),
    output:
        model="results/classifier/{classifier}/model.pt",
    params:
        classes=config["dataset"]["classes"],
    wildcard_constraints:
        classifier=IMPORTED_RE,
    log:
        "logs/import_classifier/{classifier}.log",
    benchmark:
        "benchmarks/import_classifier/{classifier}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    script:
        "../scripts/import_classifier.py"


rule infer_cams:
    """Multi-scale + flip localization maps of the {classifier} classifier for one shard of train_aug."""
    input:
        model="results/{variant}classifier/{classifier}/model.pt",
        prepared=PREP,
    output:
        maps=directory("results/{variant}shards/cams/{classifier}/{shard}"),
    params:
        images=prep("images"),
        labels=prep("labels"),
        ids=prep("train_aug"),
        infer=classifier_infer_section,
        num_shards=config["shards"],
        device=config["device"],
    log:
        "logs/infer_cams/{variant}{classifier}_{shard}.log",
    benchmark:
        "benchmarks/infer_cams/{variant}{classifier}_{shard}.tsv"
    conda:
        ENV
    threads: CLS["infer"]["threads"]
    resources:
        mem_mb=CLS["infer"]["mem_mb"],
        runtime=CLS["infer"]["runtime"],
        gpu=GPU,
    priority: saliency_chain_priority
    script:
        "../scripts/infer_cams.py"


rule merge_cams:
    """Hard-link the map shards of {classifier} into results/cams/{classifier}."""
    input:
        shards=cams_shards,
    output:
        maps=directory("results/{variant}cams/{classifier}"),
    log:
        "logs/merge_cams/{variant}{classifier}.log",
    benchmark:
        "benchmarks/merge_cams/{variant}{classifier}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=500,
        runtime=10,
    priority: saliency_chain_priority
    script:
        "../scripts/merge_shards.py"


rule make_pseudo_masks:
    """Pseudo-masks of {method} by its registered rule (wsss.methods) for every train_aug id, as VOC-palette PNGs."""
    input:
        cams=pseudo_mask_cams_input,
        saliency=pseudo_mask_saliency_input,
        prepared=PREP,
    output:
        masks=directory("results/{variant}pseudo_masks/{method}"),
    params:
        ids=prep("train_aug"),
        pseudo_masks={k: PM[k] for k in ("threshold", "saliency_threshold", "eps_rule")},
    wildcard_constraints:
        method=MASK_METHODS,
    log:
        "logs/make_pseudo_masks/{variant}{method}.log",
    benchmark:
        "benchmarks/make_pseudo_masks/{variant}{method}.tsv"
    conda:
        ENV
    threads: PM["threads"]
    resources:
        mem_mb=PM["mem_mb"],
        runtime=PM["runtime"],
    priority: saliency_chain_priority
    script:
        "../scripts/make_pseudo_masks.py"


rule cam_threshold_sweep:
    """mIoU of {method}'s thresholded CAM pseudo-masks against ground truth for each background threshold."""
    input:
        cams=pseudo_mask_cams_input,
        prepared=PREP,
    output:
        table="results/tables/{method}_thresholds.csv",
    params:
        ids=prep(config["evaluation"]["pseudo_mask_split"]),
        gt=prep("masks"),
        thresholds=PM["sweep"],
        threshold=PM["threshold"],
        num_classes=len(config["dataset"]["classes"]) + 1,
    wildcard_constraints:
        method="|".join(m for m, r in methods.METHODS.items() if r.threshold_sweep),
    log:
        "logs/cam_threshold_sweep/{method}.log",
    benchmark:
        "benchmarks/cam_threshold_sweep/{method}.tsv"
    conda:
        ENV
    threads: PM["threads"]
    resources:
        mem_mb=PM["mem_mb"],
        runtime=PM["runtime"],
    script:
        "../scripts/cam_threshold_sweep.py"


rule pseudo_mask_miou:
    """mIoU of every method's pseudo-masks against ground truth (before CRF), one row per method."""
    input:
        masks=expand("results/pseudo_masks/{method}", method=config["methods"]),
        prepared=PREP,
    output:
        table="results/tables/pseudo_mask_miou.csv",
    params:
        methods=config["methods"],
        ids=prep(config["evaluation"]["pseudo_mask_split"]),
        gt=prep("masks"),
        num_classes=len(config["dataset"]["classes"]) + 1,
    log:
        "logs/pseudo_mask_miou/pseudo_mask_miou.log",
    benchmark:
        "benchmarks/pseudo_mask_miou/pseudo_mask_miou.tsv"
    conda:
        ENV
    threads: PM["threads"]
    resources:
        mem_mb=PM["mem_mb"],
        runtime=PM["runtime"],
    script:
        "../scripts/pseudo_mask_miou.py"


rule released_checkpoints:
    """Pseudo-mask mIoU of the imported (released) classifiers beside the official README's numbers."""
    input:
        table="results/tables/pseudo_mask_miou.csv",
    output:
        table="results/tables/released_checkpoints.csv",
    params:
        checkpoints=CLS["checkpoint"],
    log:
        "logs/released_checkpoints/released_checkpoints.log",
    benchmark:
        "benchmarks/released_checkpoints/released_checkpoints.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../scripts/released_checkpoints.py"
