"""Snakemake script: training-loss curves of every training run (from the loop's loss CSVs)."""

from wsss.stages.figures import figure_losses
from wsss.core.runlog import log_to

with log_to(snakemake.log[0]):  # noqa: F821 (snakemake injects it)
    figure_losses(
        loss_csvs=list(snakemake.input.losses),  # noqa: F821
        labels=list(snakemake.params.labels),  # noqa: F821
        out_png=snakemake.output.figure,  # noqa: F821
        smooth=snakemake.params.smooth,  # noqa: F821
    )
