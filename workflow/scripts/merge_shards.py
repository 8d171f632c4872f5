"""Merge rules: hard-link the shards of a per-image stage into one folder."""

from wsss.core.runlog import log_to
from wsss.core.sharding import merge_dirs

with log_to(snakemake.log[0]) as log:
    n = merge_dirs(list(snakemake.input.shards), snakemake.output[0])
    log.info("merged %d files from %d shards", n, len(snakemake.input.shards))
