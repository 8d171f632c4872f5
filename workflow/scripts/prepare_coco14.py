"""Rule prepare_dataset of source coco14: the extracted archives and the chosen masks, as the prepared layout."""

from wsss.core.runlog import log_to
from wsss.data.sources.coco14.prepare import prepare_coco14

with log_to(snakemake.log[0]):
    prepare_coco14(snakemake.params.root, snakemake.output.prepared, list(snakemake.params.classes),
                   snakemake.params.masks, snakemake.input.masks, processes=snakemake.threads)
