"""Rule train_classifier: train one registered classifier on train_aug (resumable; DDP under torchrun)."""

import torch

from wsss.core.distributed import relaunched_under_torchrun
from wsss.core.device import claim_gpus
from wsss.core.runlog import log_to
from wsss.stages.train_classifier import train_classifier

with log_to(snakemake.log[0]):  # noqa: F821 (snakemake is injected)
    claim_gpus(snakemake.resources.get("gpu", 0))  # noqa: F821 (its own GPU on a shared workstation)
    torch.set_num_threads(snakemake.threads)  # noqa: F821
    if not relaunched_under_torchrun(snakemake.resources.get("gpu", 0)):  # noqa: F821
        p = snakemake.params  # noqa: F821
        train_classifier(snakemake.wildcards.classifier, p.images, p.labels, p.ids,  # noqa: F821
                         snakemake.output.model, dict(p.section),  # noqa: F821
                         saliency_dir=snakemake.input.saliency or None,  # noqa: F821
                         checkpoint=p.checkpoint, loss_csv=snakemake.output.losses,  # noqa: F821
                         seed=p.seed, device=p.device)
