"""Rule evaluate_shard: one shard of a (stage, method)'s evaluation, every image's counts."""

from wsss.core.runlog import log_to
from wsss.stages.evaluation import evaluate_shard

with log_to(snakemake.log[0]) as log:
    p, w = snakemake.params, snakemake.wildcards
    reads = dict(p.reads)
    if "pairs" in reads:
        reads["pairs"] = [dict(q) for q in reads["pairs"]]
    if w.kind == "confusion_ratio":
        reads["context_dir"] = snakemake.input.context
    n = evaluate_shard(w.kind, snakemake.input.pred, p.ids, snakemake.output.counts, shard=int(w.shard),
                       num_shards=p.num_shards, processes=snakemake.threads, **reads)
    log.info("scored %d images", n)
