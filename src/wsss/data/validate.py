"""Content checks of raw data where it enters the workflow (every source's prepare_dataset).

A broken raw file that slips through surfaces stages later as a cryptic error in another file
(or, worse, as a silently wrong mask). So every file prepare_dataset reads is checked here:
- every image decodes fully (PIL `.load()`: a truncated JPEG fails, `Image.open` alone does not);
- every label PNG decodes, has one channel (palette P or grey L), only values {0..C, 255}
  (C = number of classes) and its image's size;
- the split lists and the files agree: every listed id has its image and a mask.
Source-specific checks (e.g. SBD's .mat files) live in the source's module and report through
the same `Problem` / `raise_problems`.
Problems are collected over all files (the checks of one id run in prepare's worker processes, so
each file is decoded once) and reported together by `raise_problems`: one round of fixing, not
one rerun per broken file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile

from wsss.core.hints import rerun_hint
from wsss.core.io import BadInputError

MAX_LISTED = 10  # bad files named in the error message; the total is always given


@dataclass(frozen=True)
class Problem:
    path: str
    what: str
    fix: str = ""  # "" = the file's rerun_hint


def check_image(path: Path) -> tuple[tuple[int, int] | None, list[Problem]]:
    """((height, width) or None, problems) of an RGB image that must decode to the last byte."""
    # Another import may have switched PIL to accept truncated files; a half JPEG must fail here.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with Image.open(path) as img:
            img.load()
            return (img.height, img.width), []
    except FileNotFoundError:
        return None, [Problem(str(path), "image is missing")]
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        return None, [Problem(str(path), f"image does not decode ({err})")]


def check_labels(path: str, label: np.ndarray, num_classes: int, shape: tuple[int, int] | None) -> list[Problem]:
    """Value-range and size problems of a decoded (H, W) label map."""
    problems = []
    values = np.unique(label)
    bad = [int(v) for v in values if num_classes < v < 255]
    if bad:
        problems.append(Problem(path, f"holds label {bad[-1]} but dataset.classes lists only {num_classes} "
                                f"classes (allowed 0..{num_classes} and 255)",
                                f"if the data has more classes, fix dataset.classes (it lists {num_classes})"))
    if shape is not None and label.shape != shape:
        problems.append(Problem(path, f"mask is {label.shape[1]}x{label.shape[0]} but its image is "
                                f"{shape[1]}x{shape[0]}"))
    return problems


def read_label_mask(path: Path, num_classes: int, shape) -> tuple[np.ndarray | None, list[Problem]]:
    """(mask, problems) of a label PNG (VOC SegmentationClass, or any source's masks)."""
    try:
        with Image.open(path) as img:
            if img.mode not in ("P", "L"):
                return None, [Problem(str(path), f"label PNG has mode {img.mode}; expected one channel of class "
                                      "indices (palette P or grey L)")]
            mask = np.array(img, dtype=np.uint8)  # np.array forces the full decode
    except (OSError, SyntaxError, ValueError) as err:
        return None, [Problem(str(path), f"label PNG does not decode ({err})")]
    return mask, check_labels(str(path), mask, num_classes, shape)


def raise_problems(problems: list[Problem], context: str, max_listed: int = MAX_LISTED, rerun: bool = True) -> None:
    """One BadInputError naming the first `max_listed` bad files, the total, and the fix(es).

    Fixes: each problem's own `fix` (e.g. the class list), then, with `rerun`, one "replace, or
    regenerate with `snakemake --forcerun RULE`" line per rule that writes the bad files
    (wsss.core.hints); files no rule writes (inside a user's archive) carry their whole fix.
    """
    if not problems:
        return
    files = sorted({p.path for p in problems})
    listed = problems[:max_listed]
    lines = [f"{p.path}: {p.what}" for p in listed]
    if len(problems) > len(listed):
        lines.append(f"... and {len(problems) - len(listed)} more")
    fixes: list[str] = []
    for p in problems:
        if p.fix and p.fix not in fixes:
            fixes.append(p.fix)
    folders: dict[str, list[str]] = {}  # rerun hint -> folders holding bad files it regenerates
    for p in problems if rerun else ():
        dirs = folders.setdefault(rerun_hint(p.path), [])
        if str(Path(p.path).parent) not in dirs:
            dirs.append(str(Path(p.path).parent))
    for hint, dirs in folders.items():
        fixes.append(f"{'otherwise ' if fixes else ''}replace the bad files (in {', '.join(dirs)}), or {hint}")
    raise BadInputError(
        f"{context}: {len(problems)} problem(s) in {len(files)} input file(s); nothing was written. "
        f"First {len(listed)}:\n  " + "\n  ".join(lines) + "\nFix:\n  - " + "\n  - ".join(fixes))
