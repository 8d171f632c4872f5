# Scene labels of the confusion-ratio table for VOC images: PASCAL-Context's 59-class label PNGs,
# downloaded and mapped to <root>/context/ (included for sources whose scene_labels is pascal_context).
CONTEXT = config["evaluation"]


rule download_context:
    """PASCAL-Context 59-class label PNGs + class names (scene labels of the confusion table)."""
    output:
        archive=f"{DOWNLOADS}/59_context_labels.tar.gz",
        labels=f"{DOWNLOADS}/59_labels.txt",
    log:
        "logs/download_context/download_context.log",
    benchmark:
        "benchmarks/download_context/download_context.tsv"
    conda:
        ENV
    threads: job_threads("download_context")
    resources:
        **job_resources("download_context"),
    params:
        url=CONTEXT["context_url"],
        md5=CONTEXT["context_md5"],
        labels_url=CONTEXT["context_labels_url"],
        labels_md5=CONTEXT["context_labels_md5"],
    script:
        "../scripts/download_context.py"


rule prepare_context:
    """R/context/<id>.png + classes.txt from the PASCAL-Context archive (same layout as the synthetic one)."""
    input:
        archive=rules.download_context.output.archive,
        labels=rules.download_context.output.labels,
    output:
        context=directory(SCENE_LABELS),
    log:
        "logs/prepare_context/prepare_context.log",
    benchmark:
        "benchmarks/prepare_context/prepare_context.tsv"
    conda:
        ENV
    threads: job_threads("prepare_context")
    resources:
        **job_resources("prepare_context"),
    script:
        "../scripts/prepare_context.py"
