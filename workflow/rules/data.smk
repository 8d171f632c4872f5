# Data stage: the embedded synthetic benchmark or VOC 2012 + SBD, prepared into one layout.

if SOURCE == "synthetic":

    rule synthesize_dataset:
        """Generate the embedded benchmark in the exact VOC 2012 + SBD (+ DUTS, scene labels) layout."""
        output:
            voc=directory(RAW_VOC),
            sbd=directory(RAW_SBD),
            duts=directory(RAW_DUTS),
            context=directory(RAW_CONTEXT),
        params:
            classes=config["dataset"]["classes"],
            synthetic=config["dataset"]["synthetic"],
        log:
            "logs/synthesize_dataset/synthesize_dataset.log",
        benchmark:
            "benchmarks/synthesize_dataset/synthesize_dataset.tsv"
        conda:
            ENV
        threads: 1
        resources:
            mem_mb=2000,
            runtime=30,
        script:
            "../scripts/synthesize_dataset.py"

else:

    rule download_voc:
        """Download VOCtrainval_11-May-2012.tar: resumable, checksummed, atomic."""
        output:
            archive=f"{DOWNLOADS}/VOCtrainval_11-May-2012.tar",
        params:
            url=config["dataset"]["voc_url"],
            md5=config["dataset"]["voc_md5"],
        log:
            "logs/download_voc/download_voc.log",
        benchmark:
            "benchmarks/download_voc/download_voc.tsv"
        conda:
            ENV
        threads: 1
        resources:
            mem_mb=500,
            runtime=240,
        retries: 2
        script:
            "../scripts/download.py"

    rule download_sbd:
        """Download SBD's benchmark.tgz: resumable, checksummed, atomic."""
        output:
            archive=f"{DOWNLOADS}/benchmark.tgz",
        params:
            url=config["dataset"]["sbd_url"],
            md5=config["dataset"]["sbd_md5"],
        log:
            "logs/download_sbd/download_sbd.log",
        benchmark:
            "benchmarks/download_sbd/download_sbd.tsv"
        conda:
            ENV
        threads: 1
        resources:
            mem_mb=500,
            runtime=240,
        retries: 2
        script:
            "../scripts/download.py"

    rule extract_voc:
        """Extract VOCdevkit/ from the VOC archive."""
        input:
            archive=rules.download_voc.output.archive,
        output:
            folder=directory(RAW_VOC),
        params:
            member="VOCdevkit",
        log:
            "logs/extract_voc/extract_voc.log",
        benchmark:
            "benchmarks/extract_voc/extract_voc.tsv"
        conda:
            ENV
        threads: 1
        resources:
            mem_mb=1000,
            runtime=60,
        script:
            "../scripts/extract.py"

    rule extract_sbd:
        """Extract benchmark_RELEASE/ from the SBD archive."""
        input:
            archive=rules.download_sbd.output.archive,
        output:
            folder=directory(RAW_SBD),
        params:
            member="benchmark_RELEASE",
        log:
            "logs/extract_sbd/extract_sbd.log",
        benchmark:
            "benchmarks/extract_sbd/extract_sbd.tsv"
        conda:
            ENV
        threads: 1
        resources:
            mem_mb=1000,
            runtime=60,
        script:
            "../scripts/extract.py"


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
    script:
        "../scripts/prepare_dataset.py"
