"""Rule train_saliency: train PFAN on the DUTS-layout saliency set (held-out split left out)."""

import torch

from wsss.core.distributed import relaunched_under_torchrun
from wsss.core.device import claim_gpus
from wsss.core.runlog import log_to
from wsss.stages.train_saliency import train_saliency

with log_to(snakemake.log[0]):  # noqa: F821 (snakemake is injected)
    claim_gpus(snakemake.resources.get("gpu", 0))  # noqa: F821 (its own GPU on a shared workstation)
    torch.set_num_threads(snakemake.threads)  # noqa: F821
    if not relaunched_under_torchrun(snakemake.resources.get("gpu", 0)):  # noqa: F821 (gpu>1: DDP)
        p = snakemake.params  # noqa: F821
        train_saliency(snakemake.input.duts, snakemake.output.model, model=dict(p.model),  # noqa: F821
                       train_cfg=dict(p.train), holdout=p.holdout, seed=p.seed, device=p.device,
                       checkpoint=p.checkpoint, loss_csv=snakemake.output.losses)  # noqa: F821
