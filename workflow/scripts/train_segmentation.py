"""Rule train_segmentation: DeepLab-v2 on the pseudo-masks of {method} (or the ground truth, `gt`)."""

from wsss.core.device import claim_gpus
from wsss.core.distributed import relaunched_under_torchrun
from wsss.core.runlog import log_to
from wsss.stages.train_segmentation import train_segmentation

with log_to(snakemake.log[0]):
    claim_gpus(snakemake.resources.get("gpu", 0))
    if not relaunched_under_torchrun(snakemake.resources.get("gpu", 0)):
        train_segmentation(
            id_list=snakemake.params.ids,
            images_dir=snakemake.params.images,
            masks_dir=snakemake.params.masks_dir,
            labels_csv=snakemake.params.labels,
            out_model=snakemake.output.model,
            checkpoint=snakemake.params.checkpoint,
            loss_csv=snakemake.params.loss_csv,
            loss_out=snakemake.output.loss,
            deeplab=dict(snakemake.params.deeplab),
            seed=snakemake.params.seed,
            device=snakemake.params.device,
            threads=snakemake.threads,
        )
