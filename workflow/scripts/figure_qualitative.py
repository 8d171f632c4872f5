"""Snakemake script: qualitative grid (image, ground truth, saliency, one column per prediction folder)."""

from wsss.core.runlog import log_to
from wsss.stages.figures import figure_qualitative, pick_ids

with log_to(snakemake.log[0]):
    params = snakemake.params
    grid = params.grid
    figure_qualitative(
        ids=pick_ids(grid["ids_file"], grid["ids"], params.rows),
        images_dir=params.images,
        gt_dir=params.gt,
        saliency_dir=snakemake.input.saliency,
        columns=list(zip(grid["titles"], snakemake.input.columns)),
        out_png=snakemake.output.figure,
        title=grid["title"],
    )
