"""Snakemake script: bar chart of one results table (miou, boundary or confusion)."""

from wsss.core.runlog import log_to
from wsss.stages.figures import figure_table

with log_to(snakemake.log[0]):
    figure_table(snakemake.wildcards.table, snakemake.input.table, snakemake.output.figure, snakemake.input.intervals)
