"""Rule download_context: checksummed, resumable download of the PASCAL-Context labels."""

from wsss.core.runlog import log_to
from wsss.data.pascal_context import download_context

with log_to(snakemake.log[0]):
    p = snakemake.params
    download_context(p.url, p.md5, p.labels_url, p.labels_md5, snakemake.output.archive,
                     snakemake.output.labels)
