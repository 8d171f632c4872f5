"""Rule table_ablation: the grid points' pseudo-mask mIoU into results/tables/ablation_<name>.csv."""

from wsss.core.runlog import log_to
from wsss.stages.tables import table_ablation

with log_to(snakemake.log[0]):
    table = table_ablation(snakemake.wildcards.ablation, [dict(p) for p in snakemake.params.points],
                           list(snakemake.input.results), snakemake.output.table)
    print(table.to_string(index=False))
