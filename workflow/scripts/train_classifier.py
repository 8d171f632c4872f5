"""Rule train_classifier: train one registered classifier on train_aug (resumable; DDP under torchrun)."""

import torch

from wsss.core.device import claim_gpus
from wsss.core.distributed import relaunched_under_torchrun
from wsss.core.runlog import log_to
from wsss.methods import classifier
from wsss.stages.train_classifier import train_classifier

with log_to(snakemake.log[0]):
    claim_gpus(snakemake.resources.get("gpu", 0))
    torch.set_num_threads(snakemake.threads)
    if not relaunched_under_torchrun(snakemake.resources.get("gpu", 0)):
        p = snakemake.params
        train_classifier(classifier(snakemake.wildcards.classifier), p.images, p.labels, p.ids,
                         snakemake.output.model, dict(p.training),
                         saliency_dir=snakemake.input.saliency or None,
                         checkpoint=p.checkpoint, loss_csv=snakemake.output.losses,
                         seed=p.seed, device=p.device)
