"""Rule cam_threshold_sweep: mIoU of cam pseudo-masks per background threshold (results/tables/cam_thresholds.csv),
from the per-shard counts of cam_threshold_sweep_shard."""

from wsss.core.runlog import log_to
from wsss.stages.pseudo_masks import merge_threshold_sweep

with log_to(snakemake.log[0]):
    p = snakemake.params
    merge_threshold_sweep(list(snakemake.input.shards), list(p.thresholds), p.num_classes, snakemake.output.table,
                          fixed_threshold=p.threshold)
