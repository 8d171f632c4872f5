"""Snakemake script: class-agnostic boundary P/R/F1 of one (method, stage) prediction folder."""

from wsss.stages.evaluation import EvalLabel, evaluate_boundary
from wsss.core.runlog import log_to

with log_to(snakemake.log[0]):  # noqa: F821 (snakemake injects it)
    evaluate_boundary(
        pred_dir=snakemake.input.pred,  # noqa: F821
        boundary_dir=snakemake.params.boundaries,  # noqa: F821
        ids_file=snakemake.params.ids,  # noqa: F821
        out_json=snakemake.output.summary,  # noqa: F821
        label=EvalLabel(snakemake.wildcards.method, snakemake.wildcards.stage),  # noqa: F821
        tolerance=snakemake.params.tolerance,  # noqa: F821
        processes=snakemake.threads,  # noqa: F821
    )
