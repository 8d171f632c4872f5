"""Rule infer_saliency: PFAN maps for one shard of the train_aug + val ids."""

import torch

from wsss.stages.infer_saliency import infer_saliency
from wsss.core.device import claim_gpus
from wsss.core.runlog import log_to

with log_to(snakemake.log[0]) as log:  # noqa: F821 (snakemake is injected)
    claim_gpus(snakemake.resources.get("gpu", 0))  # noqa: F821 (its own GPU on a shared workstation)
    torch.set_num_threads(snakemake.threads)  # noqa: F821
    p = snakemake.params  # noqa: F821
    n = infer_saliency(snakemake.input.model, p.images, list(p.id_lists), snakemake.output.maps,  # noqa: F821
                       shard=int(snakemake.wildcards.shard), num_shards=p.num_shards,  # noqa: F821
                       device=p.device, batch_size=p.batch_size)
    log.info("wrote %d saliency maps", n)
