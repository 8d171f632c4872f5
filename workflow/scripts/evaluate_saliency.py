"""Rule evaluate_saliency: MAE / max F of PFAN and a centre prior on the held-out saliency split."""

import torch

from wsss.stages.infer_saliency import evaluate_saliency
from wsss.core.device import claim_gpus
from wsss.core.runlog import log_to

with log_to(snakemake.log[0]):  # noqa: F821 (snakemake is injected)
    claim_gpus(snakemake.resources.get("gpu", 0))  # noqa: F821 (its own GPU on a shared workstation)
    torch.set_num_threads(snakemake.threads)  # noqa: F821
    p = snakemake.params  # noqa: F821
    evaluate_saliency(snakemake.input.model, snakemake.input.duts, snakemake.output.table,  # noqa: F821
                      holdout=p.holdout, seed=p.seed, centre_sigma=p.centre_sigma, device=p.device,
                      batch_size=p.batch_size)
