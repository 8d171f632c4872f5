"""Rule table_paper: each row of the paper's tables beside this run's mIoU and its interval."""

from wsss.core.runlog import log_to
from wsss.stages.paper import paper_table

with log_to(snakemake.log[0]):
    p = snakemake.params
    table = paper_table(snakemake.input.miou, snakemake.input.intervals, [dict(r) for r in p.published],
                        dict(p.deeplab), snakemake.output.table)
    print(table.to_string(index=False))
