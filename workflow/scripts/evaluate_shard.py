"""Rule evaluate_shard: one shard of a (stage, method)'s evaluation, every image's counts."""

from wsss.core.runlog import log_to
from wsss.stages.evaluation import evaluate_shard

with log_to(snakemake.log[0]) as log:
    p, w = snakemake.params, snakemake.wildcards
    n = evaluate_shard(w.kind, snakemake.input.pred, p.ids, snakemake.output.counts, gt_dir=p.gt,
                       classes_file=p.classes, boundary_dir=p.boundaries, context_dir=snakemake.input.get("context"),
                       pairs=[dict(q) for q in p.pairs], tolerance=p.tolerance, shard=int(w.shard),
                       num_shards=p.num_shards, processes=snakemake.threads)
    log.info("scored %d images", n)
