"""Rule prepare_dataset: SegmentationClassAug, lists, labels and boundaries in one layout."""

from wsss.core.runlog import log_to
from wsss.data.sources.voc.prepare import prepare_dataset

with log_to(snakemake.log[0]):
    prepare_dataset(snakemake.input.voc, snakemake.input.sbd, snakemake.output.prepared,
                    list(snakemake.params.classes), processes=snakemake.threads)
