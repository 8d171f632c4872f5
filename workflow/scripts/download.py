"""Rules download_*: a checksummed, resumable, atomic download."""

from wsss.core.runlog import log_to
from wsss.data.download import download

with log_to(snakemake.log[0]):
    download(snakemake.params.url, snakemake.output.archive, snakemake.params.md5)
