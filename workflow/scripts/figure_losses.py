"""Snakemake script: training-loss curves of every training run (from the loop's loss CSVs)."""

from wsss.figures import loss_curves
from wsss.runlog import log_to

with log_to(snakemake.log[0]):  # noqa: F821 (snakemake injects it)
    loss_curves(
        loss_csvs=list(snakemake.input.losses),  # noqa: F821
        labels=list(snakemake.params.labels),  # noqa: F821
        out_png=snakemake.output.figure,  # noqa: F821
        smooth=snakemake.params.smooth,  # noqa: F821
    )
