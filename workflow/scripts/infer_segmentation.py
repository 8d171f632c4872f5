"""Rule infer_segmentation: DeepLab predictions on val, with and without the dense CRF."""

from wsss.stages.infer_segmentation import infer_segmentation
from wsss.core.device import claim_gpus
from wsss.core.runlog import log_to

with log_to(snakemake.log[0]):  # noqa: F821
    claim_gpus(snakemake.resources.get("gpu", 0))  # noqa: F821 (its own GPU on a shared workstation)
    infer_segmentation(
        model_path=snakemake.input.model,  # noqa: F821
        id_list=snakemake.params.ids,  # noqa: F821
        images_dir=snakemake.params.images,  # noqa: F821
        pred_dir=snakemake.output.pred,  # noqa: F821
        crf_dir=snakemake.output.pred_crf,  # noqa: F821
        crf=dict(snakemake.params.crf),  # noqa: F821
        scales=list(snakemake.params.scales),  # noqa: F821
        flip=snakemake.params.flip,  # noqa: F821
        device=snakemake.params.device,  # noqa: F821
        processes=snakemake.threads,  # noqa: F821
        threads=snakemake.threads,  # noqa: F821
    )
