"""Rule extract_coco14_masks: the authors' released MS-COCO 2014 masks, as <train2014|val2014>/<id>.png."""

from wsss.core.runlog import log_to
from wsss.data.sources.coco14.prepare import extract_released_masks

with log_to(snakemake.log[0]):
    extract_released_masks(snakemake.input.archive, snakemake.output.masks)
