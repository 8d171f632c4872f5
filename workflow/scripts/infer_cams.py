"""Rule infer_cams: multi-scale + flip localization maps for one shard of the train_aug ids."""

import torch

from wsss.core.device import claim_gpus
from wsss.core.runlog import log_to
from wsss.stages.infer_cams import infer_cams

with log_to(snakemake.log[0]) as log:
    claim_gpus(snakemake.resources.get("gpu", 0))
    torch.set_num_threads(snakemake.threads)
    p = snakemake.params
    n = infer_cams(snakemake.input.model, p.images, p.labels, p.ids, snakemake.output.maps, dict(p.infer),
                   shard=int(snakemake.wildcards.shard), num_shards=p.num_shards, device=p.device)
    log.info("wrote maps of %d images", n)
