"""Rule verify_weights: the checksum of a weights file that is there, recorded once."""

from wsss.core.runlog import log_to
from wsss.data.weights import verify_weights

with log_to(snakemake.log[0]):
    e = snakemake.params.entry
    verify_weights(snakemake.input.weights, snakemake.output.record, e.get("md5"), e.get("sha256"))
