"""Rule table_intervals: paired bootstrap intervals over images (wsss.stages.intervals)."""

from wsss.core.runlog import log_to
from wsss.stages.intervals import table_intervals

with log_to(snakemake.log[0]):
    p = snakemake.params
    boot = dict(p.bootstrap)
    table = table_intervals([dict(e) for e in p.entries], [list(c) for c in boot["comparisons"]],
                            [dict(q) for q in p.pairs], snakemake.output.table, resamples=boot["resamples"],
                            seed=boot["seed"], level=boot["level"])
    print(table.to_string(index=False))
