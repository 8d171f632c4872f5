"""Rule train_saliency: train PFAN on the DUTS-layout saliency set (held-out split left out)."""

import torch

from wsss.core.device import claim_gpus
from wsss.core.distributed import relaunched_under_torchrun
from wsss.core.runlog import log_to
from wsss.stages.train_saliency import train_saliency

with log_to(snakemake.log[0]):
    claim_gpus(snakemake.resources.get("gpu", 0))
    torch.set_num_threads(snakemake.threads)
    if not relaunched_under_torchrun(snakemake.resources.get("gpu", 0)):
        p = snakemake.params
        train_saliency(snakemake.input.duts, snakemake.output.model, model=dict(p.model),
                       train_cfg=dict(p.train), holdout=p.holdout, seed=p.seed, device=p.device,
                       checkpoint=p.checkpoint, loss_csv=snakemake.output.losses)
