"""Snakemake script: bar chart of one results table (miou, boundary or confusion)."""

from wsss.stages.figures import figure_table
from wsss.core.runlog import log_to

with log_to(snakemake.log[0]):
    figure_table(snakemake.wildcards.table, snakemake.input.table, snakemake.output.figure)
