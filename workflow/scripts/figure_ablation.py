"""Rule figure_ablation: one ablation table drawn (wsss.stages.figures.figure_ablation)."""

from wsss.core.runlog import log_to
from wsss.stages.figures import figure_ablation

with log_to(snakemake.log[0]):
    figure_ablation(snakemake.input.table, snakemake.output.figure)
