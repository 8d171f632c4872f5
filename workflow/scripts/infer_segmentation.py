"""Rule infer_segmentation: DeepLab predictions on val, with and without the dense CRF."""

from wsss.core.device import claim_gpus
from wsss.core.runlog import log_to
from wsss.stages.infer_segmentation import infer_segmentation

with log_to(snakemake.log[0]):
    claim_gpus(snakemake.resources.get("gpu", 0))
    infer_segmentation(
        model_path=snakemake.input.model,
        id_list=snakemake.params.ids,
        images_dir=snakemake.params.images,
        pred_dir=snakemake.output.pred,
        crf_dir=snakemake.output.pred_crf,
        crf=dict(snakemake.params.inference["crf"]),
        scales=list(snakemake.params.inference["scales"]),
        flip=snakemake.params.inference["flip"],
        device=snakemake.params.device,
        processes=snakemake.threads,
        threads=snakemake.threads,
    )
