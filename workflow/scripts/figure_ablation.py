"""Rule figure_ablation: one ablation table drawn (wsss.stages.figures.figure_ablation)."""

from wsss.stages.figures import figure_ablation
from wsss.core.runlog import log_to

with log_to(snakemake.log[0]):
    figure_ablation(snakemake.input.table, snakemake.output.figure)
