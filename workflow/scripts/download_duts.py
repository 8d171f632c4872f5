"""Rule download_duts: DUTS-TR.zip, resumable and atomic (checksummed when saliency.duts_md5 is set)."""

from wsss.core.runlog import log_to
from wsss.data.duts import download_duts

with log_to(snakemake.log[0]):
    download_duts(snakemake.params.url, snakemake.output.archive, snakemake.params.md5)
