"""Rule prepare_context: PASCAL-Context label PNGs → R/context/<id>.png + classes.txt."""

from wsss.core.runlog import log_to
from wsss.data.pascal_context import prepare_context

with log_to(snakemake.log[0]):
    prepare_context(snakemake.input.archive, snakemake.input.labels, snakemake.output.context)
