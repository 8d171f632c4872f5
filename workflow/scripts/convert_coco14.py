"""Rule convert_coco14: one split x shard of MS-COCO's instance annotations rasterised into label PNGs."""

from wsss.core.runlog import log_to
from wsss.data.sources.coco14.prepare import convert_shard

with log_to(snakemake.log[0]) as log:
    n = convert_shard(snakemake.params.root, snakemake.wildcards.split, int(snakemake.wildcards.shard),
                      snakemake.params.num_shards, snakemake.output.masks, processes=snakemake.threads)
    log.info("converted %d images", n)
