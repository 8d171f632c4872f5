# Data source `synthetic` (the embedded default): one rule writes the whole benchmark in the raw
# layouts a real source downloads (wsss.data.layout): VOC 2012, SBD, a DUTS-style saliency set and
# scene labels. rules/data.smk then prepares it like the real data.

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
        SOURCE_ENV
    threads: 2  # first job of a run: nothing else can use the second core yet
    resources:
        mem_mb=2000,
        runtime=30,
    script:
        "../../scripts/synthesize_dataset.py"
