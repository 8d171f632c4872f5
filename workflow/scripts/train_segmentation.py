"""Rule train_segmentation: DeepLab-v2 on the pseudo-masks of {method} (or the ground truth, `gt`)."""

from wsss.core.distributed import relaunched_under_torchrun
from wsss.core.device import claim_gpus
from wsss.core.runlog import log_to
from wsss.stages.train_segmentation import train_segmentation

with log_to(snakemake.log[0]):  # noqa: F821
    claim_gpus(snakemake.resources.get("gpu", 0))  # noqa: F821 (its own GPU on a shared workstation)
    if not relaunched_under_torchrun(snakemake.resources.get("gpu", 0)):  # noqa: F821 (gpu>1: DDP)
        train_segmentation(
            id_list=snakemake.params.ids,  # noqa: F821
            images_dir=snakemake.params.images,  # noqa: F821
            masks_dir=snakemake.params.masks_dir,  # noqa: F821
            labels_csv=snakemake.params.labels,  # noqa: F821
            out_model=snakemake.output.model,  # noqa: F821
            checkpoint=snakemake.params.checkpoint,  # noqa: F821
            loss_csv=snakemake.params.loss_csv,  # noqa: F821
            loss_out=snakemake.output.loss,  # noqa: F821
            deeplab=dict(snakemake.params.deeplab),  # noqa: F821
            seed=snakemake.params.seed,  # noqa: F821
            device=snakemake.params.device,  # noqa: F821
            threads=snakemake.threads,  # noqa: F821
        )
