# The prepare step of the sources whose raw data has VOC 2012 + SBD's layout (voc, synthetic):
# SegmentationClassAug, the lists, image labels and boundaries (wsss.data.sources.voc).


rule prepare_dataset:
    """VOC 2012 + SBD merged into the prepared layout: masks, boundaries, lists, image labels."""
    input:
        voc=voc_source.raw(ROOT, "voc"),
        sbd=voc_source.raw(ROOT, "sbd"),
    output:
        prepared=directory(PREP),
    log:
        "logs/prepare_dataset/prepare_dataset.log",
    benchmark:
        "benchmarks/prepare_dataset/prepare_dataset.tsv"
    # Before train_saliency: queued behind it, this 2-thread job would wait for PFAN's whole training
    # while the second core idles, and the classifiers would wait for it.
    priority: 20
    conda:
        ENV
    threads: job_threads("prepare_dataset")
    resources:
        **job_resources("prepare_dataset"),
    params:
        classes=config["dataset"]["classes"],
    script:
        "../../scripts/prepare_voc_layout.py"
