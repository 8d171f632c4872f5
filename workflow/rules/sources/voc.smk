# Data source `voc` (the paper's setting): PASCAL VOC 2012 + SBD, DUTS-TR (PFAN's training set)
# and PASCAL-Context (scene labels of the confusion-ratio table), each downloaded (resumable,
# checksummed, atomic) and extracted into the raw layouts of wsss.data.layout. rules/data.smk then
# prepares them. A new data source (e.g. MS-COCO) is one such file plus its wsss.data module.

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
        SOURCE_ENV
    threads: 1
    resources:
        mem_mb=500,
        runtime=240,
    script:
        "../../scripts/download.py"

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
        SOURCE_ENV
    threads: 1
    resources:
        mem_mb=500,
        runtime=240,
    script:
        "../../scripts/download.py"

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
        SOURCE_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=60,
    script:
        "../../scripts/extract.py"

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
        SOURCE_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=60,
    script:
        "../../scripts/extract.py"


rule download_duts:
    """Download DUTS-TR.zip (the saliency training set for real data): resumable, atomic."""
    output:
        archive=f"{DOWNLOADS}/DUTS-TR.zip",
    params:
        url=SAL["duts_url"],
        md5=SAL["duts_md5"],
    log:
        "logs/download_duts/download_duts.log",
    benchmark:
        "benchmarks/download_duts/download_duts.tsv"
    conda:
        SOURCE_ENV
    threads: 1
    resources:
        mem_mb=500,
        runtime=120,
    script:
        "../../scripts/download_duts.py"

rule extract_duts:
    """Extract DUTS-TR/ (DUTS-TR-Image, DUTS-TR-Mask) from the archive."""
    input:
        archive=rules.download_duts.output.archive,
    output:
        folder=directory(RAW_DUTS),
    log:
        "logs/extract_duts/extract_duts.log",
    benchmark:
        "benchmarks/extract_duts/extract_duts.tsv"
    conda:
        SOURCE_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=30,
    script:
        "../../scripts/extract_duts.py"


rule download_context:
    """PASCAL-Context 59-class label PNGs + class names (scene labels of the confusion table)."""
    output:
        archive=f"{DOWNLOADS}/59_context_labels.tar.gz",
        labels=f"{DOWNLOADS}/59_labels.txt",
    params:
        url=EVAL["context_url"],
        md5=EVAL["context_md5"],
        labels_url=EVAL["context_labels_url"],
        labels_md5=EVAL["context_labels_md5"],
    log:
        "logs/download_context/download_context.log",
    benchmark:
        "benchmarks/download_context/download_context.tsv"
    conda:
        SOURCE_ENV
    threads: 1
    resources:
        mem_mb=500,
        runtime=60,
    script:
        "../../scripts/download_context.py"

rule prepare_context:
    """R/context/<id>.png + classes.txt from the PASCAL-Context archive (same layout as the synthetic one)."""
    input:
        archive=rules.download_context.output.archive,
        labels=rules.download_context.output.labels,
    output:
        context=directory(RAW_CONTEXT),
    log:
        "logs/prepare_context/prepare_context.log",
    benchmark:
        "benchmarks/prepare_context/prepare_context.tsv"
    conda:
        SOURCE_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=30,
    script:
        "../../scripts/prepare_context.py"
