"""Rule cam_threshold_sweep: mIoU of cam pseudo-masks per background threshold (results/tables/cam_thresholds.csv)."""

from wsss.core.runlog import log_to
from wsss.stages.pseudo_masks import cam_threshold_sweep

with log_to(snakemake.log[0]):
    p = snakemake.params
    cam_threshold_sweep(snakemake.input.cams, p.gt, p.ids, list(p.thresholds), p.num_classes,
                        snakemake.output.table, fixed_threshold=p.threshold, processes=snakemake.threads)
