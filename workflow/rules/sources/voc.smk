# Data source `voc` (the paper's setting, wsss.data.sources.voc): PASCAL VOC 2012 and SBD, each
# downloaded (resumable, checksummed, atomic), extracted, and merged into <root>/prepared/.
from wsss.data.sources import voc as voc_source

VOC = config["dataset"]["voc"]


rule download_voc:
    """Download VOCtrainval_11-May-2012.tar: resumable, checksummed, atomic."""
    output:
        archive=f"{DOWNLOADS}/VOCtrainval_11-May-2012.tar",
    log:
        "logs/download_voc/download_voc.log",
    benchmark:
        "benchmarks/download_voc/download_voc.tsv"
    conda:
        ENV
    threads: job_threads("download_voc")
    resources:
        **job_resources("download_voc"),
    params:
        url=VOC["voc_url"],
        md5=VOC["voc_md5"],
    script:
        "../../scripts/download.py"


rule download_sbd:
    """Download SBD's benchmark.tgz: resumable, checksummed, atomic."""
    output:
        archive=f"{DOWNLOADS}/benchmark.tgz",
    log:
        "logs/download_sbd/download_sbd.log",
    benchmark:
        "benchmarks/download_sbd/download_sbd.tsv"
    conda:
        ENV
    threads: job_threads("download_sbd")
    resources:
        **job_resources("download_sbd"),
    params:
        url=VOC["sbd_url"],
        md5=VOC["sbd_md5"],
    script:
        "../../scripts/download.py"


rule extract_voc:
    """Extract VOCdevkit/ from the VOC archive."""
    input:
        archive=rules.download_voc.output.archive,
    output:
        folder=directory(voc_source.raw(ROOT, "voc")),
    log:
        "logs/extract_voc/extract_voc.log",
    benchmark:
        "benchmarks/extract_voc/extract_voc.tsv"
    conda:
        ENV
    threads: job_threads("extract_voc")
    resources:
        **job_resources("extract_voc"),
    params:
        member="VOCdevkit",
    script:
        "../../scripts/extract.py"


rule extract_sbd:
    """Extract benchmark_RELEASE/ from the SBD archive."""
    input:
        archive=rules.download_sbd.output.archive,
    output:
        folder=directory(voc_source.raw(ROOT, "sbd")),
    log:
        "logs/extract_sbd/extract_sbd.log",
    benchmark:
        "benchmarks/extract_sbd/extract_sbd.tsv"
    conda:
        ENV
    threads: job_threads("extract_sbd")
    resources:
        **job_resources("extract_sbd"),
    params:
        member="benchmark_RELEASE",
    script:
        "../../scripts/extract.py"


include: "voc_layout.smk"
