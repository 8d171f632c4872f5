"""Snakemake script: confusion ratio m_{k,c} and target IoU of one (method, stage) prediction folder."""

from wsss.core.runlog import log_to
from wsss.stages.evaluation import EvalLabel, evaluate_confusion_ratio

with log_to(snakemake.log[0]):
    evaluate_confusion_ratio(
        pred_dir=snakemake.input.pred,
        gt_dir=snakemake.params.gt,
        context_dir=snakemake.input.context,
        ids_file=snakemake.params.ids,
        classes_file=snakemake.params.classes,
        pairs=snakemake.params.pairs,
        out_json=snakemake.output.summary,
        out_per_image=snakemake.output.per_image,
        label=EvalLabel(snakemake.wildcards.method, snakemake.wildcards.stage),
        processes=snakemake.threads,
    )
