"""Rule import_precomputed_saliency: check user-supplied saliency maps into results/saliency/maps."""

from wsss.core.runlog import log_to
from wsss.stages.infer_saliency import import_precomputed_saliency

with log_to(snakemake.log[0]):
    p = snakemake.params
    import_precomputed_saliency(snakemake.input.maps, p.images, list(p.id_lists), snakemake.output.maps,
                                resize_mismatched=p.resize_mismatched, processes=snakemake.threads,
                                optional_lists=list(p.optional_lists), binary_maps=p.binary_maps)
