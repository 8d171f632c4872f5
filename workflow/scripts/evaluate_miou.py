"""Rule evaluate_miou: confusion matrix + mIoU summary of one (stage, method) from its shards."""

from wsss.core.runlog import log_to
from wsss.stages.evaluation import EvalLabel, evaluate_miou

with log_to(snakemake.log[0]):
    evaluate_miou(list(snakemake.input.shards), snakemake.params.classes, snakemake.output.matrix,
                  snakemake.output.summary, EvalLabel(snakemake.wildcards.method, snakemake.wildcards.stage),
                  snakemake.output.per_image)
