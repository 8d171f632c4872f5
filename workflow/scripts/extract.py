"""Rules extract_*: extract one top-level folder of an archive (tar or zip), atomically; `params.names`
(optional) limits it to those files of the folder. With a `manifest` output the extracted files are
checked against the archive (wsss.data.download.verify_extraction) and the manifest written: the
archive may then go (a temp() download)."""

import json

from wsss.core.io import atomic_path
from wsss.core.runlog import log_to
from wsss.data.download import extract, verify_extraction

with log_to(snakemake.log[0]) as log:
    names = snakemake.params.get("names")
    extract(snakemake.input.archive, snakemake.params.member, snakemake.output.folder, names)
    if snakemake.output.get("manifest"):
        manifest = verify_extraction(snakemake.input.archive, snakemake.params.member, snakemake.output.folder, names)
        with atomic_path(snakemake.output.manifest) as tmp:
            tmp.write_text(json.dumps(manifest, indent=1) + "\n")
        log.info("verified %d files (%d bytes) against %s", manifest["files"], manifest["bytes"], manifest["archive"])
