"""Rule table_claims: the embedded default's claims (wsss.stages.claims.BARS) in this run."""

from wsss.core.runlog import log_to
from wsss.stages.paper import claims_table

with log_to(snakemake.log[0]):
    table = claims_table(list(snakemake.input.tables), snakemake.input.intervals, snakemake.output.table)
    print(table.to_string(index=False))
