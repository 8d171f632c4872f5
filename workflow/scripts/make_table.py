"""Snakemake script: gather the per-(method, stage) evaluation JSONs into one results table."""

from wsss import tables
from wsss.runlog import log_to

with log_to(snakemake.log[0]):  # noqa: F821 (snakemake injects it)
    kind = snakemake.params.kind  # noqa: F821
    results = list(snakemake.input.results)  # noqa: F821
    if kind == "miou":
        table = tables.miou_table(results, snakemake.output.table, snakemake.output.per_class)  # noqa: F821
    elif kind == "boundary":
        table = tables.boundary_table(results, snakemake.output.table)  # noqa: F821
    elif kind == "confusion":
        table = tables.confusion_table(results, snakemake.output.table)  # noqa: F821
    else:
        raise ValueError(f"unknown table kind {kind!r}")
    print(table.to_string(index=False))
