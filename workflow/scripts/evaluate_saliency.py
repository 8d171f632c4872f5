"""Rule evaluate_saliency: MAE / max F of PFAN and a centre prior on the held-out saliency split."""

import torch

from wsss.core.device import claim_gpus
from wsss.core.runlog import log_to
from wsss.stages.infer_saliency import evaluate_saliency

with log_to(snakemake.log[0]):
    claim_gpus(snakemake.resources.get("gpu", 0))
    torch.set_num_threads(snakemake.threads)
    p = snakemake.params
    evaluate_saliency(snakemake.input.model, snakemake.input.duts, snakemake.output.table,
                      holdout=p.holdout, seed=p.seed, centre_sigma=p.centre_sigma, device=p.device,
                      batch_size=p.batch_size)
