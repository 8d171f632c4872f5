"""Rule import_precomputed_saliency: check user-supplied saliency maps into results/saliency/maps."""

from wsss.infer.saliency import import_precomputed_saliency
from wsss.runlog import log_to

with log_to(snakemake.log[0]):  # noqa: F821 (snakemake is injected)
    p = snakemake.params  # noqa: F821
    import_precomputed_saliency(snakemake.input.maps, p.images, list(p.id_lists), snakemake.output.maps,  # noqa: F821
                                resize_mismatched=p.resize_mismatched, processes=snakemake.threads,  # noqa: F821
                                optional_lists=list(p.optional_lists), binary_maps=p.binary_maps)
