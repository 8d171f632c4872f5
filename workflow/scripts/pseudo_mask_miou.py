"""Rule pseudo_mask_miou: mIoU of each method's pseudo-masks on the ground truth (results/tables/pseudo_mask_miou.csv)."""

from wsss.stages.pseudo_masks import pseudo_mask_miou
from wsss.core.runlog import log_to

with log_to(snakemake.log[0]):  # noqa: F821 (snakemake is injected)
    p = snakemake.params  # noqa: F821
    dirs = dict(zip(p.methods, snakemake.input.masks))  # noqa: F821
    pseudo_mask_miou(dirs, p.gt, p.ids, p.num_classes, snakemake.output.table, processes=snakemake.threads)  # noqa: F821
