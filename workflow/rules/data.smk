# Data stage: the raw folders of the data source (rules/sources/<dataset.source>.smk) prepared
# into the one layout every later stage reads.


rule prepare_dataset:
    """SegmentationClassAug, train_aug/train/val lists, image labels and boundary maps: one layout for all."""
    input:
        voc=RAW_VOC,
        sbd=RAW_SBD,
    output:
        prepared=directory(PREP),
    params:
        classes=config["dataset"]["classes"],
    log:
        "logs/prepare_dataset/prepare_dataset.log",
    benchmark:
        "benchmarks/prepare_dataset/prepare_dataset.tsv"
    conda:
        ENV
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    # Before train_saliency: queued behind it, this 2-thread job waited for PFAN's whole training
    # while the second core idled, and the classifiers waited for it.
    priority: 20
    script:
        "../scripts/prepare_dataset.py"
