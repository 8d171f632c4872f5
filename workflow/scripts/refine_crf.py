"""Rule refine_crf: dense CRF over one shard of the pseudo-masks (a process pool of `threads`)."""

from wsss.crf import refine_crf
from wsss.runlog import log_to

with log_to(snakemake.log[0]):  # noqa: F821
    refine_crf(
        id_list=snakemake.params.ids,  # noqa: F821
        images_dir=snakemake.params.images,  # noqa: F821
        out_dir=snakemake.output.shard,  # noqa: F821
        crf={**snakemake.params.crf, "bg_threshold": snakemake.params.bg_threshold,  # noqa: F821
             "saliency_threshold": snakemake.params.saliency_threshold},
        masks_dir=snakemake.input.masks,  # noqa: F821
        maps_dir=snakemake.input.maps or None,  # noqa: F821
        saliency_dir=snakemake.input.saliency or None,
        labels_csv=snakemake.params.labels,  # noqa: F821
        shard=int(snakemake.wildcards.shard),  # noqa: F821
        num_shards=snakemake.params.num_shards,  # noqa: F821
        processes=snakemake.threads,  # noqa: F821
    )
