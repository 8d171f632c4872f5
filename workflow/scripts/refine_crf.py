"""Rule refine_crf: dense CRF over one shard of the pseudo-masks (a process pool of `threads`)."""

from wsss.core.runlog import log_to
from wsss.stages.crf import refine_crf

with log_to(snakemake.log[0]):
    refine_crf(
        id_list=snakemake.params.ids,
        images_dir=snakemake.params.images,
        out_dir=snakemake.output.shard,
        crf=dict(snakemake.params.crf),
        masks_dir=snakemake.input.masks,
        maps_dir=snakemake.input.maps or None,
        saliency_dir=snakemake.input.saliency or None,
        labels_csv=snakemake.params.labels,
        shard=int(snakemake.wildcards.shard),
        num_shards=snakemake.params.num_shards,
        processes=snakemake.threads,
        sharded_by=snakemake.params.sharded_by,
    )
