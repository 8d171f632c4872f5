"""Rule evaluate_boundary: class-agnostic boundary P/R/F1 of one (stage, method) from its shards."""

from wsss.core.runlog import log_to
from wsss.stages.evaluation import EvalLabel, evaluate_boundary

with log_to(snakemake.log[0]):
    evaluate_boundary(list(snakemake.input.shards), snakemake.params.boundaries, snakemake.output.summary,
                      EvalLabel(snakemake.wildcards.method, snakemake.wildcards.stage), snakemake.params.tolerance,
                      snakemake.output.per_image)
