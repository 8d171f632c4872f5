"""Snakemake script: class-agnostic boundary P/R/F1 of one (method, stage) prediction folder."""

from wsss.core.runlog import log_to
from wsss.stages.evaluation import EvalLabel, evaluate_boundary

with log_to(snakemake.log[0]):
    evaluate_boundary(
        pred_dir=snakemake.input.pred,
        boundary_dir=snakemake.params.boundaries,
        ids_file=snakemake.params.ids,
        out_json=snakemake.output.summary,
        out_per_image=snakemake.output.per_image,
        label=EvalLabel(snakemake.wildcards.method, snakemake.wildcards.stage),
        tolerance=snakemake.params.tolerance,
        processes=snakemake.threads,
    )
