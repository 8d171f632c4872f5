"""Rules table_*: gather the per-(stage, method) evaluation JSONs into the results table named
like the rule (wsss.stages.tables.table_miou, table_boundary, table_confusion_ratio)."""

from wsss.core.runlog import log_to
from wsss.stages import tables

with log_to(snakemake.log[0]):
    make = getattr(tables, snakemake.rule)
    table = make(list(snakemake.input.results), *snakemake.output)
    print(table.to_string(index=False))
