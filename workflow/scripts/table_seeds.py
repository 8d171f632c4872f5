"""Rule table_seeds: `make seeds`' summary and its runs as the report's tables (wsss.stages.claims.table_seeds)."""

from wsss.core.runlog import log_to
from wsss.stages.claims import table_seeds

with log_to(snakemake.log[0]):
    print(table_seeds(snakemake.input.cells, snakemake.input.summary, snakemake.output.table,
                      snakemake.output.runs).to_string(index=False))
