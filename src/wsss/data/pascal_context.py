"""Scene labels for VOC: PASCAL-Context (Mottaghi et al., CVPR 2014), 59-class version.

The confusion-ratio table needs a label for the context that co-occurs with an object (railroad
under a train, water under a boat). PASCAL-Context annotates every pixel of the VOC 2010 trainval
images; its 59-class release is one 8-bit PNG per image id (0 = unlabelled, 1..59 = the lines of
59_labels.txt). This module turns it into the layout the evaluation reads, the same the synthetic
benchmark writes: `R/context/<id>.png` (0 none, 1.. = line of classes.txt) + `R/context/classes.txt`.
VOC 2012 images from 2011 have no context labels; the evaluation skips them (and says so).
"""

from __future__ import annotations

import io
import logging
import os
import re
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

from wsss.core.io import BadInputError, atomic_dir, write_label_png
from wsss.data.download import download

log = logging.getLogger(__name__)

_ID = re.compile(r"^\d{4}_\d{6}$")


def _require_md5(md5: str | None, key: str, url: str) -> str:
    if not md5:
        raise BadInputError(f"evaluation.{key} is not set: the project cannot vouch for the checksum of {url}. "
                            "Download it once, check it, and put its `md5sum` into the config.")
    return md5


def download_context(url: str, md5: str | None, labels_url: str, labels_md5: str | None, archive_out: str,
                     labels_out: str, retries: int = 5, backoff: float = 1.0) -> None:
    """Checksummed downloads of the label archive and of the class-name list, both through the
    project's one downloader (retries with backoff, resume, nothing kept on a checksum mismatch)."""
    archive_md5 = _require_md5(md5, "context_md5", url)
    names_md5 = _require_md5(labels_md5, "context_labels_md5", labels_url)
    download(url, archive_out, archive_md5, retries=retries, backoff=backoff)
    download(labels_url, labels_out, names_md5, retries=retries, backoff=backoff)


def parse_label_names(text: str) -> list[str]:
    """`59_labels.txt` → names by label index (1..N). Accepts `N: name`, `N name` or one name per line."""
    named: dict[int, str] = {}
    plain: list[str] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        m = re.match(r"^\s*(\d+)\s*[:\s]\s*(\S.*?)\s*$", line)
        if m:
            named[int(m.group(1))] = m.group(2)
        else:
            plain.append(line.strip())
    if named and plain:
        raise BadInputError("context label list mixes numbered and plain lines; expected one format")
    if plain:
        return plain
    if 0 in named:  # a 0 entry names 'unlabelled'/'background', which is not a scene class
        named.pop(0)
    return [named.get(i, f"unnamed_{i}") for i in range(1, max(named) + 1)]


def prepare_context(archive: str | os.PathLike, labels_file: str | os.PathLike, out_dir: str | os.PathLike) -> int:
    """Write `<out_dir>/<id>.png` for every label PNG of the archive, and `classes.txt`; atomic."""
    names = parse_label_names(Path(labels_file).read_text())
    if len(names) > 254:
        raise BadInputError(f"{labels_file}: {len(names)} classes do not fit 8-bit label PNGs; use the 59-class set")
    n = 0
    with tarfile.open(archive) as tar, atomic_dir(out_dir) as tmp:
        for member in tar:
            stem = Path(member.name).stem
            if not (member.isfile() and member.name.endswith(".png") and _ID.match(stem)):
                continue  # read members by name only: nothing is extracted to a path from the archive
            with tar.extractfile(member) as fh, Image.open(io.BytesIO(fh.read())) as img:
                if img.mode not in ("L", "P"):
                    raise BadInputError(f"{archive}:{member.name}: mode {img.mode}, expected 8-bit label PNGs")
                label = np.array(img, dtype=np.uint8)
            if label.max() > len(names):
                raise BadInputError(f"{archive}:{member.name}: label {label.max()} but {labels_file} names only "
                                    f"{len(names)} classes; archive and list do not match")
            write_label_png(tmp / f"{stem}.png", label)
            n += 1
        if n == 0:
            raise BadInputError(f"{archive}: no <id>.png label maps inside; is it 59_context_labels.tar.gz?")
        (tmp / "classes.txt").write_text("".join(f"{name}\n" for name in names))
    log.info("%d context label maps, %d classes -> %s", n, len(names), out_dir)
    return n
