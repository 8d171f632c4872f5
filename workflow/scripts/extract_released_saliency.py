"""Rule extract_released_saliency: the authors' PFAN map archive → its folder of <id>.png maps."""

from wsss.core.runlog import log_to
from wsss.stages.infer_saliency import extract_released_saliency

with log_to(snakemake.log[0]):
    extract_released_saliency(snakemake.input.archive, snakemake.params.ids, snakemake.output.maps)
