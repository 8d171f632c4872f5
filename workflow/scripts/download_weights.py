"""Rule download_weights: one weights file, fetched and checksummed (wsss.data.weights)."""

from wsss.core.runlog import log_to
from wsss.data.weights import download_weights

with log_to(snakemake.log[0]):
    e = snakemake.params.entry
    download_weights(e["url"], snakemake.output.weights, e.get("md5"), e.get("sha256"), e.get("via", "http"))
