"""Rule released_checkpoints: imported classifiers' pseudo-mask mIoU beside the published numbers."""

from wsss.core.runlog import log_to
from wsss.stages.tables import released_checkpoints

with log_to(snakemake.log[0]):  # noqa: F821 (snakemake is injected)
    table = released_checkpoints(snakemake.input.table, dict(snakemake.params.checkpoints),  # noqa: F821
                                 snakemake.output.table)  # noqa: F821
    print(table.to_string(index=False))
