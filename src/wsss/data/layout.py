"""Folder layouts shared by every data source, stated once: the DUTS and scene-label layouts, and
the prepared layout every stage after a data source's prepare_dataset reads (written through
wsss.data.prepared). A source's own raw layout is its package's (wsss.data.sources.voc). The package
and the workflow (workflow/rules/common.smk) both build their paths from here.

    R = dataset.root
    R/DUTS-TR/{DUTS-TR-Image/<id>.jpg, DUTS-TR-Mask/<id>.png}   a source's own saliency set (synthetic);
                                                 real sources share SHARED_DUTS
    R/context/{<id>.png, classes.txt}            scene labels (0 none, 1.. = lines of classes.txt)
    R/prepared/                                  see PREPARED
"""

from __future__ import annotations

import os
from pathlib import Path

# Top-level raw folders under dataset.root, by role (what a data source's rule file writes).
RAW = {"duts": "DUTS-TR", "context": "context"}

# DUTS-TR as rules/duts.smk downloads it, shared by every real data source (PFAN's training set).
SHARED_DUTS = "resources/DUTS-TR"

# Inside DUTS-TR/
DUTS = {"images": "DUTS-TR-Image", "masks": "DUTS-TR-Mask"}
# Inside context/
CONTEXT_CLASSES = "classes.txt"

# The prepared layout (R/prepared/), by name.
PREPARED_DIR = "prepared"
PREPARED = {
    "images": "JPEGImages",               # <id>.jpg, hard links to the raw images
    "masks": "SegmentationClassAug",      # <id>.png, VOC palette, 255 = ignore
    "boundaries": "boundaries",           # <id>.png, uint8 0/1 class-agnostic boundary
    "labels": "labels.csv",               # id + one 0/1 column per class, in class order
    "classes": "classes.txt",             # foreground class names, one a line (label 1..)
    "train_aug": "lists/train_aug.txt",
    "train": "lists/train.txt",
    "val": "lists/val.txt",
    "heldout": "lists/heldout.txt",       # train_aug - train: labelled, disjoint from what the tables report
}


def raw(root: str | os.PathLike, role: str) -> str:
    """A shared raw top-level folder (`duts`, `context`) under dataset.root."""
    return f"{root}/{RAW[role]}"


def prepared(root: str | os.PathLike, name: str | None = None) -> str:
    """The prepared folder under dataset.root, or one of its entries (PREPARED's names)."""
    base = f"{root}/{PREPARED_DIR}"
    return base if name is None else f"{base}/{PREPARED[name]}"


def inside(folder: str | os.PathLike, table: dict[str, str], name: str) -> Path:
    """An entry of a raw layout table (a source's VOC or SBD, DUTS) inside its top-level folder."""
    return Path(folder) / table[name]
