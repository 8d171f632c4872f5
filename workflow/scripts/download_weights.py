"""Rule download_weights: one weights file, fetched and checksummed (wsss.data.weights)."""

from wsss.data.weights import download_weights
from wsss.core.runlog import log_to

with log_to(snakemake.log[0]):  # noqa: F821 (snakemake is injected)
    e = snakemake.params.entry  # noqa: F821
    download_weights(e["url"], snakemake.output.weights, e.get("md5"), e.get("sha256"), e.get("via", "http"))  # noqa: F821
