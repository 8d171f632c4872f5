"""Snakemake script: training-loss curves of every training run (from the loop's loss CSVs)."""

from wsss.core.runlog import log_to
from wsss.stages.figures import figure_losses

with log_to(snakemake.log[0]):
    figure_losses(
        loss_csvs=list(snakemake.input.losses),
        labels=list(snakemake.params.labels),
        out_png=snakemake.output.figure,
        smooth=snakemake.params.smooth,
    )
