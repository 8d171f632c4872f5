"""Rules extract_*: extract one top-level folder of an archive, atomically."""

from wsss.core.runlog import log_to
from wsss.data.download import extract

with log_to(snakemake.log[0]):
    extract(snakemake.input.archive, snakemake.params.member, snakemake.output.folder)
