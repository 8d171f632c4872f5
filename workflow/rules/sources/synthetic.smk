# Data source `synthetic` (the embedded default, wsss.data.sources.synthetic): one rule writes the
# whole benchmark in the raw layouts a real source downloads (VOC 2012, SBD, a DUTS-style saliency
# set and scene labels); the voc source's prepare step then prepares it like the real data.
from wsss.data.sources import voc as voc_source


rule synthesize_dataset:
    """Generate the embedded benchmark in the exact VOC 2012 + SBD (+ DUTS, scene labels) layout."""
    output:
        voc=directory(voc_source.raw(ROOT, "voc")),
        sbd=directory(voc_source.raw(ROOT, "sbd")),
        duts=directory(SALIENCY_SET),
        context=directory(SCENE_LABELS),
    log:
        "logs/synthesize_dataset/synthesize_dataset.log",
    benchmark:
        "benchmarks/synthesize_dataset/synthesize_dataset.tsv"
    conda:
        ENV
    threads: job_threads("synthesize_dataset")
    resources:
        **job_resources("synthesize_dataset"),
    params:
        classes=config["dataset"]["classes"],
        synthetic=config["dataset"]["synthetic"],
    script:
        "../../scripts/synthesize_dataset.py"


include: "voc_layout.smk"
