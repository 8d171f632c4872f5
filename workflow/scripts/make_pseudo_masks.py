"""Rule make_pseudo_masks: the pseudo-masks of one registered method for the train_aug ids."""

from wsss.stages.pseudo_masks import make_pseudo_masks
from wsss.core.runlog import log_to

with log_to(snakemake.log[0]):  # noqa: F821 (snakemake is injected)
    p = snakemake.params  # noqa: F821
    make_pseudo_masks(snakemake.wildcards.method, snakemake.input.cams, p.ids, snakemake.output.masks,  # noqa: F821
                      dict(p.pseudo_masks), saliency_dir=snakemake.input.saliency or None,  # noqa: F821
                      processes=snakemake.threads)  # noqa: F821
