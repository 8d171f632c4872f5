"""Rule ablation_saliency: generated saliency maps (ground truth or centre prior) for the saliency ablation."""

from wsss.core.runlog import log_to
from wsss.stages.ablation import ablation_saliency

with log_to(snakemake.log[0]):
    p = snakemake.params
    ablation_saliency(snakemake.wildcards.source, p.gt, p.ids, snakemake.output.maps, dict(p.source_params))
