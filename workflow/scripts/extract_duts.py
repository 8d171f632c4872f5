"""Rule extract_duts: the DUTS-TR/ folder of DUTS-TR.zip, extracted atomically."""

from wsss.core.runlog import log_to
from wsss.data.duts import extract_duts

with log_to(snakemake.log[0]) as log:
    n = extract_duts(snakemake.input.archive, snakemake.output.folder)
    log.info("extracted %d DUTS-TR image/mask pairs", n)
