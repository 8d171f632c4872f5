"""Rule cam_threshold_sweep_shard: the CAM threshold sweep's confusion counts over one shard's map files."""

from wsss.core.runlog import log_to
from wsss.stages.pseudo_masks import cam_threshold_sweep_shard

with log_to(snakemake.log[0]):
    p = snakemake.params
    cam_threshold_sweep_shard(snakemake.input.cams, p.gt, p.ids, p.sharded_by, int(snakemake.wildcards.shard),
                              p.num_shards, list(p.thresholds), p.num_classes, snakemake.output.counts,
                              processes=snakemake.threads)
