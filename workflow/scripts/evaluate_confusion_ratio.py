"""Snakemake script: confusion ratio m_{k,c} and target IoU of one (method, stage) prediction folder."""

from wsss.stages.evaluation import EvalLabel, evaluate_confusion_ratio
from wsss.core.runlog import log_to

with log_to(snakemake.log[0]):  # noqa: F821 (snakemake injects it)
    evaluate_confusion_ratio(
        pred_dir=snakemake.input.pred,  # noqa: F821
        gt_dir=snakemake.params.gt,  # noqa: F821
        context_dir=snakemake.input.context,  # noqa: F821
        ids_file=snakemake.params.ids,  # noqa: F821
        classes_file=snakemake.params.classes,  # noqa: F821
        pairs=snakemake.params.pairs,  # noqa: F821
        out_json=snakemake.output.summary,  # noqa: F821
        label=EvalLabel(snakemake.wildcards.method, snakemake.wildcards.stage),  # noqa: F821
        processes=snakemake.threads,  # noqa: F821
    )
