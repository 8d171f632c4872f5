"""Rules extract_*: extract one top-level folder of an archive (tar or zip), atomically; `params.names`
(optional) limits it to those files of the folder."""

from wsss.core.runlog import log_to
from wsss.data.download import extract

with log_to(snakemake.log[0]):
    extract(snakemake.input.archive, snakemake.params.member, snakemake.output.folder,
            snakemake.params.get("names"))
