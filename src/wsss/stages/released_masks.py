"""Stage import_released_masks: the authors' released pseudo-masks as a mask source (method
`released`), so DeepLab can be trained on exactly the masks the paper's DeepLab trained on, and
this workflow's DeepLab stage checked apart from its classifier.

The archive (zip or tar, nesting found: wsss.data.released) must hold a label PNG for every
train_aug id; each is checked like any label PNG entering the workflow (one channel, values
0..C or 255, its image's size) before any of them is used.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from PIL import Image

from wsss.core.io import atomic_dir, read_id_list
from wsss.core.parallel import chunks, map_chunks
from wsss.data.released import extract_id_folder
from wsss.data.validate import Problem, raise_problems, read_label_mask

log = logging.getLogger(__name__)


def _check_chunk(args: tuple) -> list[Problem]:
    masks, images, ids, num_classes = args
    problems = []
    for i in ids:
        with Image.open(Path(images) / f"{i}.jpg") as img:
            shape = (img.height, img.width)
        problems += read_label_mask(Path(masks) / f"{i}.png", num_classes, shape)[1]
    return problems


def import_released_masks(archive: str | os.PathLike, images_dir: str | os.PathLike, ids_file: str | os.PathLike,
                          num_classes: int, out_dir: str | os.PathLike, fix: str, processes: int = 1) -> int:
    """`out_dir/<id>.png` for every id of `ids_file` from the released archive (atomically); returns
    how many masks the archive held (it may cover more ids than asked). `fix` says how to get another
    archive (wsss.config.settings.released_archive_fix): the weights stage's, or the user's own."""
    ids = read_id_list(ids_file)
    with atomic_dir(out_dir) as tmp:
        held, inner = extract_id_folder(archive, ids, tmp / "all", "pseudo-mask", fix)
        args = [(str(tmp / "all"), str(images_dir), c, num_classes) for c in chunks(ids, processes)]
        found = [p for chunk in map_chunks(_check_chunk, args, processes) for p in chunk]
        # A bad mask is named as the archive holds it (the extracted copy is gone with the job), and
        # the fix is the archive's: no rule of this workflow writes it.
        in_archive = f"{archive}:" + ("" if inner == "." else f"{inner}/")
        problems = [Problem(in_archive + Path(p.path).name, p.what, f"{p.fix}; otherwise {fix}" if p.fix else fix)
                    for p in found]
        raise_problems(problems, f"import_released_masks ({archive})", rerun=False)
        for i in ids:
            os.replace(tmp / "all" / f"{i}.png", tmp / f"{i}.png")
        for leftover in (tmp / "all").iterdir():
            leftover.unlink()
        (tmp / "all").rmdir()
    log.info("released pseudo-masks: %d of the archive's %d masks (the %s ids) from %s", len(ids), held, ids_file,
             archive)
    return held
