# Weights stage: every pretrained file in weights.files is fetched by one rule (URL and checksum
# in the config) and verified once, whether downloaded or placed by hand; the jobs that read a
# weights file depend on its verification record (weights_record in common.smk), so no training
# job downloads anything and a wrong file stops before any of them.


rule download_weights:
    """Download {file} (weights.files: HTTP resumable, or Google Drive through gdown) and check its checksum."""
    output:
        weights=f"{WEIGHTS_DIR}/{{file}}",
    log:
        "logs/download_weights/{file}.log",
    benchmark:
        "benchmarks/download_weights/{file}.tsv"
    wildcard_constraints:
        file=WEIGHTS_RE,
    conda:
        ENV
    threads: job_threads("download_weights")
    resources:
        **job_resources("download_weights"),
    params:
        entry=lambda wildcards: WEIGHTS[wildcards.file],
    script:
        "../scripts/download_weights.py"


rule verify_weights:
    """The checksum of {file} (weights.files), downloaded or placed by hand, recorded once."""
    input:
        weights=f"{WEIGHTS_DIR}/{{file}}",
    output:
        record=f"{WEIGHTS_DIR}/.verified/{{file}}.json",
    log:
        "logs/verify_weights/{file}.log",
    benchmark:
        "benchmarks/verify_weights/{file}.tsv"
    wildcard_constraints:
        file=WEIGHTS_RE,
    conda:
        ENV
    threads: job_threads("verify_weights")
    resources:
        **job_resources("verify_weights"),
    params:
        entry=lambda wildcards: WEIGHTS[wildcards.file],
    script:
        "../scripts/verify_weights.py"
