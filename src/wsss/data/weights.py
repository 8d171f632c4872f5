"""The weights stage: every pretrained file the paper setting reads, fetched by one rule per file
(URL and checksum in `weights.files`), never inside a training job.

- `download_weights`: plain HTTP through `wsss.data.download.download` (resumable, network errors
  retried), or Google Drive through gdown (pinned), then the checksum; a mismatch leaves nothing.
- `verify_weights`: the checksum of a file that is already there (placed by hand on an offline
  cluster, or downloaded earlier), once, into `<dir>/.verified/<file>.json`; the jobs that read a
  weights file depend on that record, so a wrong file stops before any of them.

Checksums: `md5` (full hex) and/or `sha256` (full hex or a prefix: torchvision publishes the first
8 hex digits in its file names). Neither = trust on first use, with the MD5 logged.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from wsss.core.io import BadInputError, atomic_path

log = logging.getLogger(__name__)


def digests(path: str | os.PathLike) -> dict[str, str]:
    md5, sha = hashlib.md5(), hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            md5.update(block)
            sha.update(block)
    return {"md5": md5.hexdigest(), "sha256": sha.hexdigest()}


def check_digests(path: str | os.PathLike, md5: str | None, sha256: str | None, name: str | os.PathLike | None = None,
                  url: str | None = None) -> dict[str, str]:
    """The file's digests; a BadInputError naming the file (`name`: the path it is meant for) when
    one differs from the expected. `url`: it was just downloaded from there."""
    found = digests(path)
    for kind, want in (("md5", md5), ("sha256", sha256)):
        if want and not found[kind].startswith(want.lower()):
            fix = (f"{url} served another file: nothing was kept; fix its url or checksum in weights.files, or "
                   "download it by hand and place it there") if url else (
                   "the file is damaged or another one. Delete it and rerun: the download rule fetches it "
                   "again (offline: place the right file there)")
            raise BadInputError(f"{name or path}: {kind} {found[kind]} does not match the expected {want} "
                                f"(weights.files); {fix}.")
    if not md5 and not sha256:
        log.warning("%s: no checksum configured (weights.files); trusting it on first use, md5 %s", path, found["md5"])
    return found


def gdown_fetch(url: str, out: Path) -> None:
    """The one call into gdown (a seam: tests serve it from 127.0.0.1)."""
    import gdown

    if gdown.download(url=url, output=str(out), quiet=True) is None:
        raise BadInputError(f"{out}: gdown could not fetch {url} (Google Drive quota or a private file?); "
                            "download it by hand and place it at this path")


def download_weights(url: str, out: str | os.PathLike, md5: str | None = None, sha256: str | None = None,
                     via: str = "http") -> dict[str, str]:
    """Fetch one weights file onto `out` (atomically) and check it; returns its digests."""
    out = Path(out)
    if via == "http":
        from wsss.data.download import download

        download(url, out, md5)  # resumable, retries network errors, md5 checked before the rename
        try:
            return check_digests(out, md5, sha256, url=url)
        except BadInputError:
            out.unlink(missing_ok=True)
            raise
    if via != "gdown":
        raise ValueError(f"weights.files: via must be http or gdown, got {via!r}")
    with atomic_path(out) as tmp:
        gdown_fetch(url, tmp)
        found = check_digests(tmp, md5, sha256, name=out, url=url)  # a mismatch leaves no file
    log.info("downloaded %s (md5 %s)", out, found["md5"])
    return found


def verify_weights(path: str | os.PathLike, record: str | os.PathLike, md5: str | None = None,
                   sha256: str | None = None) -> dict[str, str]:
    """Check a weights file that is there and write the record the reading jobs depend on."""
    if not Path(path).is_file():
        raise BadInputError(f"{path}: weights file is missing; rerun to download it (weights.files), or place it")
    found = check_digests(path, md5, sha256)
    with atomic_path(record) as tmp:
        tmp.write_text(json.dumps({"file": str(path), **found}, indent=1) + "\n")
    return found
