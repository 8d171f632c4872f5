# Classifier stage: the registered classifiers ({classifier}: cam, eps), their multi-scale
# localization maps (sharded), the pseudo-masks of each method ({method}: cam, cam_sal, eps) and
# the CAM threshold sweep. {variant} is "" for the configured run, or an ablation's grid point.
CLS = config["classifier"]
# Classifiers given as files (classifier.checkpoint) are imported; the others are trained.
IMPORTED = plan.imported_classifiers(config)
TRAINED_RE = "|".join(c for c in methods.CLASSIFIERS if c not in IMPORTED) or NONE
IMPORTED_RE = "|".join(IMPORTED) or NONE
SWEEP_RE = "|".join(m for m, r in methods.METHODS.items() if r.threshold_sweep) or NONE


def classifier_maps(method, variant=""):
    """The localization-map folder a pseudo-mask method reads: its classifier's (of a variant run)."""
    return f"results/{variant}cams/{methods.method(method).classifier}"


def variant_saliency(variant):
    """The saliency maps a run trains on: the workflow's, or a saliency ablation point's own."""
    source = ablation.point_saliency(variant)
    return f"results/ablation/saliency_maps/{source}" if source else "results/saliency/maps"


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
    return [f"results/{wildcards.variant}shards/cams/{wildcards.classifier}/{s}" for s in SHARDS]


def pseudo_mask_cams_input(wildcards):
    return classifier_maps(wildcards.method, wildcards.get("variant", ""))


def pseudo_mask_saliency_input(wildcards):
    """The saliency maps, for a method whose pseudo-mask rule reads them (cam_sal); a variant's own."""
    return variant_saliency(wildcards.variant) if methods.method(wildcards.method).needs_saliency else []


def chain_priority(wildcards):
    """Jobs downstream of the saliency-trained classifier first (wsss.config.plan)."""
    name = wildcards.get("classifier")
    return plan.chain_priority(name) if name is not None else plan.method_priority(wildcards.method)


STAGE_TARGETS += [f"results/pseudo_masks/{m}" for m in config["methods"]]
STAGE_TARGETS += [f"results/tables/{m}_thresholds.csv" for m in config["methods"] if methods.method(m).threshold_sweep]


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
        training=classifier_training,
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
    threads: job_threads("train_classifier")
    resources:
        **job_resources("train_classifier"),
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
    threads: job_threads("import_classifier")
    resources:
        **job_resources("import_classifier"),
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
        infer=lambda wildcards: settings.cam_inference(config, methods.classifier(wildcards.classifier)),
        num_shards=config["shards"],
        device=config["device"],
    log:
        "logs/infer_cams/{variant}{classifier}_{shard}.log",
    benchmark:
        "benchmarks/infer_cams/{variant}{classifier}_{shard}.tsv"
    conda:
        ENV
    threads: job_threads("infer_cams")
    resources:
        **job_resources("infer_cams"),
        gpu=GPU,
    priority: chain_priority
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
    threads: job_threads("merge_cams")
    resources:
        **job_resources("merge_cams"),
    priority: chain_priority
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
        pseudo_masks=lambda wildcards: settings.pseudo_mask_params(config, methods.method(wildcards.method)),
    wildcard_constraints:
        method=MASK_METHODS,
    log:
        "logs/make_pseudo_masks/{variant}{method}.log",
    benchmark:
        "benchmarks/make_pseudo_masks/{variant}{method}.tsv"
    conda:
        ENV
    threads: job_threads("make_pseudo_masks")
    resources:
        **job_resources("make_pseudo_masks"),
    priority: chain_priority
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
        thresholds=config["pseudo_masks"]["sweep"],
        threshold=config["pseudo_masks"]["threshold"],
        num_classes=len(config["dataset"]["classes"]) + 1,
    wildcard_constraints:
        method=SWEEP_RE,
    log:
        "logs/cam_threshold_sweep/{method}.log",
    benchmark:
        "benchmarks/cam_threshold_sweep/{method}.tsv"
    conda:
        ENV
    threads: job_threads("cam_threshold_sweep")
    resources:
        **job_resources("cam_threshold_sweep"),
    script:
        "../scripts/cam_threshold_sweep.py"


rule released_checkpoints:
    """Pseudo-mask mIoU of the imported (released) classifiers beside the authors' published numbers for this dataset."""
    input:
        table="results/tables/miou.csv",
    output:
        table="results/tables/released_checkpoints.csv",
    params:
        checkpoints=CLS["checkpoint"],
        published=SOURCE.released_train_miou,
    log:
        "logs/released_checkpoints/released_checkpoints.log",
    benchmark:
        "benchmarks/released_checkpoints/released_checkpoints.tsv"
    conda:
        ENV
    threads: job_threads("released_checkpoints")
    resources:
        **job_resources("released_checkpoints"),
    script:
        "../scripts/released_checkpoints.py"
