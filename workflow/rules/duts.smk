# PFAN's training set for real data: DUTS-TR, downloaded once and shared by every data source
# (layout.SHARED_DUTS). A source with a saliency set of its own (synthetic) writes SALIENCY_SET itself.


rule download_duts:
    """Download DUTS-TR.zip (the saliency training set for real data): resumable, atomic."""
    output:
        archive=f"{DOWNLOADS}/DUTS-TR.zip",
    log:
        "logs/download_duts/download_duts.log",
    benchmark:
        "benchmarks/download_duts/download_duts.tsv"
    conda:
        ENV
    threads: job_threads("download_duts")
    resources:
        **job_resources("download_duts"),
    params:
        url=config["saliency"]["duts_url"],
        md5=config["saliency"]["duts_md5"],
    script:
        "../scripts/download_duts.py"


rule extract_duts:
    """Extract DUTS-TR/ (DUTS-TR-Image, DUTS-TR-Mask) from the archive."""
    input:
        archive=rules.download_duts.output.archive,
    output:
        folder=directory(layout.SHARED_DUTS),
    log:
        "logs/extract_duts/extract_duts.log",
    benchmark:
        "benchmarks/extract_duts/extract_duts.tsv"
    conda:
        ENV
    threads: job_threads("extract_duts")
    resources:
        **job_resources("extract_duts"),
    script:
        "../scripts/extract_duts.py"
