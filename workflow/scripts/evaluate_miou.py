"""Snakemake script: confusion matrix + mIoU summary of one (method, stage) prediction folder."""

from wsss.core.runlog import log_to
from wsss.stages.evaluation import EvalLabel, evaluate_miou

with log_to(snakemake.log[0]):
    evaluate_miou(
        pred_dir=snakemake.input.pred,
        gt_dir=snakemake.params.gt,
        ids_file=snakemake.params.ids,
        classes_file=snakemake.params.classes,
        out_matrix=snakemake.output.matrix,
        out_json=snakemake.output.summary,
        out_per_image=snakemake.output.per_image,
        label=EvalLabel(snakemake.wildcards.method, snakemake.wildcards.stage),
        processes=snakemake.threads,
    )
