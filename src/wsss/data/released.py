"""Folders of per-id files the authors released as archives (their saliency maps, their
pseudo-masks): the archive's nesting is not fixed (e.g. `SALImages/`, or one more level), so the
folder holding the most `<id>.png` of the wanted ids is taken, and every wanted id must be there.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from wsss.core.io import BadInputError, atomic_dir
from wsss.data.download import extract_all


def extract_id_folder(archive: str | os.PathLike, ids: list[str], out_dir: str | os.PathLike, what: str,
                      fix: str, max_listed: int = 10) -> tuple[int, str]:
    """`out_dir` (atomically) = the archive's folder of `<id>.png` files of `ids`; returns how many
    of its PNGs it holds (ids beyond `ids` included) and that folder's path inside the archive ("."
    at its top), so that later errors can name a file as the archive holds it. A missing id is an
    error naming it and `fix`."""
    archive, out_dir = Path(archive), Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir.parent) as raw:
        extract_all(archive, raw)
        wanted = set(ids)
        counts = {folder: sum(f.endswith(".png") and f[:-4] in wanted for f in files)
                  for folder, _, files in os.walk(raw)}
        best = max(counts, key=counts.get) if counts else raw
        missing = [i for i in ids if not (Path(best) / f"{i}.png").is_file()]
        if missing:
            found = Path(best).relative_to(raw) if counts.get(best) else "none"
            raise BadInputError(f"{archive}: its {what} folder ({found}) lacks {len(missing)} of {len(ids)} ids "
                                f"(e.g. {', '.join(missing[:max_listed])}); is it the archive for this dataset? {fix}")
        with atomic_dir(out_dir) as tmp:
            moved = 0
            for f in Path(best).iterdir():
                if f.suffix == ".png":
                    os.replace(f, tmp / f.name)
                    moved += 1
        inner = Path(best).relative_to(raw).as_posix()
    return moved, inner
