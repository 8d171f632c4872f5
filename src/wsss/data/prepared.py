"""The prepared layout, written: the one contract between a data source and the pipeline.

Every source (wsss.data.sources) ends its rules by writing `<root>/prepared/` through these
helpers, so that the layout (wsss.data.layout.PREPARED) is stated and checked in one place:
  JPEGImages/<id>.jpg             the images (hard links where possible)
  SegmentationClassAug/<id>.png   label PNG: 0 background, 1..C classes, 255 ignore
  boundaries/<id>.png             uint8 0/1 class-agnostic boundary (sources that declare them)
  lists/<split>.txt               train_aug (classifier training, pseudo-masks), train (pseudo-mask
                                  tables), val (DeepLab's tables), heldout (where declared)
  labels.csv, classes.txt         image-level labels (classes present in the mask), class names
"""

from __future__ import annotations

import csv
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np

from wsss.core.io import BadInputError, atomic_dir, link_or_copy, write_id_list, write_label_png
from wsss.data.layout import PREPARED

# Lists every source writes; `heldout` only where the source declares it.
REQUIRED_LISTS = ("train_aug", "train", "val")


def mask_boundary(label: np.ndarray) -> np.ndarray:
    """SBD's definition on a mask: pixels of a class region with a 4-neighbour of another label
    (255 counts as background)."""
    lab = np.where(label == 255, 0, label)
    pad = np.pad(lab, 1, mode="edge")
    diff = np.zeros(lab.shape, bool)
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        diff |= pad[dy:dy + lab.shape[0], dx:dx + lab.shape[1]] != lab
    return diff & (lab > 0)


def present_classes(mask: np.ndarray) -> list[int]:
    """Labels 1.. present in a mask (background and ignore excluded)."""
    return sorted(int(v) for v in np.unique(mask) if 0 < v < 255)


@contextmanager
def prepared_dir(out_dir: str | os.PathLike, boundaries: bool) -> Iterator[Path]:
    """The prepared folder, written atomically: a killed job leaves nothing that looks finished."""
    with atomic_dir(out_dir) as tmp:
        for name in ("images", "masks") + (("boundaries",) if boundaries else ()):
            (tmp / PREPARED[name]).mkdir()
        (tmp / PREPARED["train_aug"]).parent.mkdir()
        yield tmp


def write_item(prepared: str | os.PathLike, image_id: str, mask: np.ndarray,
               boundary: np.ndarray | None = None) -> list[int]:
    """One id's label PNG (and boundary PNG); returns the classes present in its mask."""
    write_label_png(Path(prepared) / PREPARED["masks"] / f"{image_id}.png", mask)
    if boundary is not None:
        write_label_png(Path(prepared) / PREPARED["boundaries"] / f"{image_id}.png", boundary.astype(np.uint8))
    return present_classes(mask)


def finish(prepared: str | os.PathLike, classes: Sequence[str], images: Mapping[str, str | os.PathLike],
           present: Mapping[str, Sequence[int]], lists: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """Link the images, write labels.csv, classes.txt and the lists; returns each list's size.

    Every required list must be non-empty and hold only ids that have an image and a mask: a
    source that cannot fill one stops here, not stages later in a training job.
    """
    prepared = Path(prepared)
    missing = [name for name in REQUIRED_LISTS if name not in lists]
    empty = [name for name, ids in lists.items() if not ids]
    unknown = {name: sorted(set(ids) - set(present))[:3] for name, ids in lists.items() if set(ids) - set(present)}
    if missing or empty or unknown:
        raise BadInputError(f"{prepared}: the data source's split lists are incomplete (missing {missing}, empty "
                            f"{empty}, ids without a mask {unknown}); fix the source's raw lists or its "
                            "conversion, then rerun `snakemake --forcerun prepare_dataset`")
    for image_id in sorted(present):
        link_or_copy(images[image_id], prepared / PREPARED["images"] / f"{image_id}.jpg")
    with open(prepared / PREPARED["labels"], "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", *classes])
        for image_id in sorted(present):
            found = set(present[image_id])
            writer.writerow([image_id, *(int(c + 1 in found) for c in range(len(classes)))])
    (prepared / PREPARED["classes"]).write_text("".join(f"{c}\n" for c in classes))
    for name, ids in lists.items():
        write_id_list(prepared / PREPARED[name], sorted(ids))
    return {name: len(ids) for name, ids in lists.items()}
