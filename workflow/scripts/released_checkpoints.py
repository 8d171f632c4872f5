"""Rule released_checkpoints: imported classifiers' pseudo-mask mIoU beside the published numbers."""

from wsss.core.runlog import log_to
from wsss.stages.tables import released_checkpoints

with log_to(snakemake.log[0]):
    table = released_checkpoints(snakemake.input.table, dict(snakemake.params.checkpoints),
                                 dict(snakemake.params.published), snakemake.output.table)
    print(table.to_string(index=False))
