"""Rules extract_*: extract one top-level folder of an archive (tar or zip), atomically; `params.names`
(optional) limits it to those files of the folder."""

from wsss.data.download import extract
from wsss.runlog import log_to

with log_to(snakemake.log[0]):  # noqa: F821
    extract(snakemake.input.archive, snakemake.params.member, snakemake.output.folder,  # noqa: F821
            snakemake.params.get("names"))
