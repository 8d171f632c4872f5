"""Rule import_released_masks: the authors' released pseudo-masks as a method's masks."""

from wsss.core.runlog import log_to
from wsss.stages.released_masks import import_released_masks

with log_to(snakemake.log[0]):
    p = snakemake.params
    import_released_masks(snakemake.input.archive, p.images, p.ids, p.num_classes, snakemake.output.masks,
                          fix=p.fix, processes=snakemake.threads)
