"""Snakemake script: qualitative grid (image, ground truth, saliency, one column per prediction folder)."""

from wsss.stages.figures import pick_ids, figure_qualitative
from wsss.core.runlog import log_to

with log_to(snakemake.log[0]):  # noqa: F821 (snakemake injects it)
    params = snakemake.params  # noqa: F821
    grid = params.grid
    figure_qualitative(
        ids=pick_ids(grid["ids_file"], grid["ids"], params.rows),
        images_dir=params.images,
        gt_dir=params.gt,
        saliency_dir=snakemake.input.saliency,  # noqa: F821
        columns=list(zip(grid["titles"], snakemake.input.columns)),  # noqa: F821
        out_png=snakemake.output.figure,  # noqa: F821
        title=grid["title"],
    )
