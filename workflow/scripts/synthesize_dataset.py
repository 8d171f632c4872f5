"""Rule synthesize_dataset: write the embedded benchmark in the VOC 2012 + SBD layout."""

from wsss.core.runlog import log_to
from wsss.data.sources.synthetic.generate import SyntheticConfig, synthesize_dataset

with log_to(snakemake.log[0]) as log:
    out = snakemake.output
    counts = synthesize_dataset(out.voc, out.sbd, out.duts, out.context, list(snakemake.params.classes),
                      SyntheticConfig(**snakemake.params.synthetic),
                      processes=snakemake.threads)
    log.info("synthetic benchmark written: %s", counts)
