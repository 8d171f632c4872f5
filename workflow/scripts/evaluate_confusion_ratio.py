"""Rule evaluate_confusion_ratio: confusion ratio and target IoU of one (stage, method) from its shards."""

from wsss.core.runlog import log_to
from wsss.stages.evaluation import EvalLabel, evaluate_confusion_ratio

with log_to(snakemake.log[0]):
    evaluate_confusion_ratio(list(snakemake.input.shards), snakemake.params.classes, snakemake.input.context,
                             [dict(q) for q in snakemake.params.pairs], snakemake.output.summary,
                             EvalLabel(snakemake.wildcards.method, snakemake.wildcards.stage),
                             snakemake.output.per_image)
