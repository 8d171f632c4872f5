"""Rule infer_cams: multi-scale + flip localization maps for one shard of the train_aug ids."""

import torch

from wsss.stages.infer_cams import infer_cams
from wsss.core.device import claim_gpus
from wsss.core.runlog import log_to

with log_to(snakemake.log[0]) as log:  # noqa: F821 (snakemake is injected)
    claim_gpus(snakemake.resources.get("gpu", 0))  # noqa: F821 (its own GPU on a shared workstation)
    torch.set_num_threads(snakemake.threads)  # noqa: F821
    p = snakemake.params  # noqa: F821
    n = infer_cams(snakemake.input.model, p.images, p.labels, p.ids, snakemake.output.maps, dict(p.infer),  # noqa: F821
                   shard=int(snakemake.wildcards.shard), num_shards=p.num_shards, device=p.device)  # noqa: F821
    log.info("wrote maps of %d images", n)
