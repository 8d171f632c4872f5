"""Rule synthesize_dataset: write the embedded benchmark in the VOC 2012 + SBD layout."""

from wsss.data.synthetic import SyntheticConfig, synthesize_dataset
from wsss.core.runlog import log_to

with log_to(snakemake.log[0]) as log:  # noqa: F821 (snakemake is injected)
    out = snakemake.output  # noqa: F821
    counts = synthesize_dataset(out.voc, out.sbd, out.duts, out.context, list(snakemake.params.classes),  # noqa: F821
                      SyntheticConfig(**snakemake.params.synthetic),  # noqa: F821
                      processes=snakemake.threads)  # noqa: F821
    log.info("synthetic benchmark written: %s", counts)
