"""Rule prepare_dataset: SegmentationClassAug, lists, labels and boundaries in one layout."""

from wsss.data.prepare import prepare_dataset
from wsss.core.runlog import log_to

with log_to(snakemake.log[0]):  # noqa: F821
    prepare_dataset(snakemake.input.voc, snakemake.input.sbd, snakemake.output.prepared,  # noqa: F821
                    list(snakemake.params.classes), processes=snakemake.threads)  # noqa: F821
