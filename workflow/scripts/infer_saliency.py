"""Rule infer_saliency: PFAN maps for one shard of the train_aug + val ids."""

import torch

from wsss.core.device import claim_gpus
from wsss.core.runlog import log_to
from wsss.stages.infer_saliency import infer_saliency

with log_to(snakemake.log[0]) as log:
    claim_gpus(snakemake.resources.get("gpu", 0))
    torch.set_num_threads(snakemake.threads)
    p = snakemake.params
    n = infer_saliency(snakemake.input.model, p.images, list(p.id_lists), snakemake.output.maps,
                       shard=int(snakemake.wildcards.shard), num_shards=p.num_shards,
                       device=p.device, batch_size=p.batch_size)
    log.info("wrote %d saliency maps", n)
