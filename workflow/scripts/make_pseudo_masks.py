"""Rule make_pseudo_masks: the pseudo-masks of one registered method for one shard of the train_aug ids."""

from wsss.core.runlog import log_to
from wsss.methods import method
from wsss.stages.pseudo_masks import make_pseudo_masks

with log_to(snakemake.log[0]):
    p = snakemake.params
    make_pseudo_masks(method(snakemake.wildcards.method), snakemake.input.cams, p.ids, snakemake.output.masks,
                      dict(p.pseudo_masks), saliency_dir=snakemake.input.saliency or None,
                      processes=snakemake.threads, shard=int(snakemake.wildcards.shard), num_shards=p.num_shards)
