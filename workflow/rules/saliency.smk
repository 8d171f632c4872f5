# Saliency stage: PFAN (Zhao & Wu, CVPR 2019) trained on a DUTS-layout set, its maps for every
# train_aug + val image (results/saliency/maps), and its quality on a held-out split.
# saliency.source precomputed replaces PFAN with a folder of maps the user already has, released
# with the authors' maps.


include: "inputs/saliency.smk"


rule train_saliency:
    """Train PFAN on the DUTS-layout set minus its held-out split (resumable)."""
    input:
        duts=SALIENCY_SET,
        weights=weights_record(SAL.backbone_weights),
    output:
        model=SAL_MODEL,
        losses=results.path("saliency_losses"),
    log:
        "logs/train_saliency/train_saliency.log",
    benchmark:
        "benchmarks/train_saliency/train_saliency.tsv"
    # The head of a run's critical path (saliency -> EPS classifier): before the baseline's jobs.
    priority: 10
    conda:
        ENV
    threads: job_threads("train_saliency")
    resources:
        **job_resources("train_saliency"),
        gpu=GPU,
    params:
        **settings.saliency_training(config),
        seed=config["seed"],
        device=config["device"],
        checkpoint="resources/checkpoints/saliency/pfan.pt",
    script:
        "../scripts/train_saliency.py"


if SAL.source == "pfan":

    rule infer_saliency:
        """PFAN saliency maps (8-bit PNG at image size) for one shard of the train_aug + val ids."""
        input:
            model=saliency_model,
            prepared=PREP,
        output:
            maps=directory(results.path("saliency_shard")),
        log:
            "logs/infer_saliency/{shard}.log",
        benchmark:
            "benchmarks/infer_saliency/{shard}.tsv"
        # On the critical path (saliency -> EPS classifier): as train_saliency.
        priority: 10
        conda:
            ENV
        threads: job_threads("infer_saliency")
        resources:
            **job_resources("infer_saliency"),
            gpu=GPU,
        params:
            **settings.saliency_inference(config),
            images=prep("images"),
            id_lists=SAL_ID_LISTS,
            num_shards=config["shards"],
            device=config["device"],
        script:
            "../scripts/infer_saliency.py"

    rule merge_saliency:
        """Hard-link the saliency shards into results/saliency/maps."""
        input:
            shards=saliency_shards(),
        output:
            maps=directory(results.path("saliency_maps")),
        log:
            "logs/merge_saliency/merge_saliency.log",
        benchmark:
            "benchmarks/merge_saliency/merge_saliency.tsv"
        priority: 10  # as infer_saliency
        conda:
            ENV
        threads: job_threads("merge_saliency")
        resources:
            **job_resources("merge_saliency"),
        script:
            "../scripts/merge_shards.py"


if SAL.source == "released":

    rule extract_released_saliency:
        """The EPS authors' PFAN maps: their archive extracted, its folder of <id>.png maps found and checked."""
        input:
            archive=SAL.released_archive,
            verified=weights_record(SAL.released_archive),
            prepared=PREP,
        output:
            maps=directory(RELEASED_MAPS),
        log:
            "logs/extract_released_saliency/extract_released_saliency.log",
        benchmark:
            "benchmarks/extract_released_saliency/extract_released_saliency.tsv"
        conda:
            ENV
        threads: job_threads("extract_released_saliency")
        resources:
            **job_resources("extract_released_saliency"),
        params:
            ids=prep("train_aug"),
        script:
            "../scripts/extract_released_saliency.py"


if SAL.source in ("precomputed", "released"):

    rule import_precomputed_saliency:
        """Import user-supplied maps into results/saliency/maps: every id present, every map's format and size checked."""
        input:
            maps=IMPORTED_MAPS,
            prepared=PREP,
        output:
            maps=directory(results.path("saliency_maps")),
        log:
            "logs/import_precomputed_saliency/import_precomputed_saliency.log",
        benchmark:
            "benchmarks/import_precomputed_saliency/import_precomputed_saliency.tsv"
        conda:
            ENV
        threads: job_threads("import_precomputed_saliency")
        resources:
            **job_resources("import_precomputed_saliency"),
        params:
            **settings.saliency_import(config),
            images=prep("images"),
            id_lists=[prep("train_aug")] if SAL.source == "released" else SAL_ID_LISTS,
            # the released archive may lack val maps: only the figures read them
            optional_lists=[prep("val")] if SAL.source == "released" else [],
        script:
            "../scripts/import_precomputed_saliency.py"


rule evaluate_saliency:
    """MAE and max F-measure of PFAN and of a centre prior on the held-out split of the saliency set."""
    input:
        model=saliency_model,
        duts=SALIENCY_SET,
    output:
        table=results.path("saliency_table"),
    log:
        "logs/evaluate_saliency/evaluate_saliency.log",
    benchmark:
        "benchmarks/evaluate_saliency/evaluate_saliency.tsv"
    conda:
        ENV
    threads: job_threads("evaluate_saliency")
    resources:
        **job_resources("evaluate_saliency"),
        gpu=GPU,
    params:
        **settings.saliency_evaluation(config),
        seed=config["seed"],
        device=config["device"],
    script:
        "../scripts/evaluate_saliency.py"
