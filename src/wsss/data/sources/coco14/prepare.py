"""Data source `coco14`: MS-COCO 2014, the paper's second benchmark, into the prepared layout.

Raw layout (R = dataset.root), one folder per archive member:
    R/coco2014/train2014/COCO_train2014_<12 digits>.jpg     train2014.zip, member train2014/
    R/coco2014/val2014/COCO_val2014_<12 digits>.jpg         val2014.zip, member val2014/
    R/coco2014/annotations/instances_{train,val}2014.json   annotations_trainval2014.zip (only these two)
    R/coco2014/SegmentationClass/{train2014,val2014}/<id>.png   the authors' released masks (masks: released)
Prepared (wsss.data.layout.PREPARED): JPEGImages/<id>.jpg (hard links), SegmentationClassAug/<id>.png,
lists/train_aug.txt = lists/train.txt = the train images that carry an annotation (82,081 on the
real data, the authors' metadata/coco/train.txt), lists/val.txt = the annotated val images (40,137),
labels.csv, classes.txt. COCO has no boundaries and no held-out list.

An id is the image file's stem (COCO_train2014_000000000009), the authors' id format. An image's
labels are the categories of all its annotations, crowd ones included: the class is in the image
(the authors derive their cls_labels from the annotation file). The mask rule is in wsss.data.sources.coco14.masks.
Every image is a hard link, greyscale and CMYK JPEGs included: wsss.core.io.read_image (PIL) converts
both to RGB on reading, as the official code's PIL `.convert("RGB")` does.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from wsss.core.io import BadInputError, atomic_dir
from wsss.core.parallel import chunks, map_chunks
from wsss.core.sharding import shard_ids
from wsss.data.download import extract_all
from wsss.data.layout import PREPARED
from wsss.data.prepared import finish, prepared_dir
from wsss.data.sources.coco14.masks import convert_chunk, ready_chunk
from wsss.data.validate import Problem, raise_problems

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Archive:
    url: str
    md5: str
    size: int                            # bytes
    member: str                          # the top-level folder to extract
    names: tuple[str, ...] | None = None  # only these files of it (None: all)


# The image host serves plain http (its https name fails certificate checks); the md5 guards the bytes.
ARCHIVES = {
    "train2014": Archive("http://images.cocodataset.org/zips/train2014.zip", "0da8c0bd3d6becc4dcb32757491aca88",
                         13_510_573_713, "train2014"),
    "val2014": Archive("http://images.cocodataset.org/zips/val2014.zip", "a3d79f5ed8d289b7a7554ce06a5782b3",
                       6_645_013_297, "val2014"),
    "annotations": Archive("http://images.cocodataset.org/annotations/annotations_trainval2014.zip",
                           "0a379cfc70b0e71301e0f377548639bd", 252_872_794, "annotations",
                           ("instances_train2014.json", "instances_val2014.json")),
}
# Google Drive file ids of what the authors released for COCO (halbielee/EPS README); no checksum published.
RELEASED_DRIVE_IDS = {
    "masks": "1XJF2xIC1-Y1lPJ9f3FFeSg5aaOWqrRME",
    "saliency": "1d28NKIXQA6lHDt6iIOD8cyySMQ66GoaS",
    "eps_checkpoint": "1D9dDj2_oR_aLUWpex2HL3o80zbGpk7Vp",
    "cam_checkpoint": "1VPi5GbTarzix_dwHBWC__1_WWrEZ6fzw",
}
RAW_DIR = "coco2014"
SPLITS = {"train": "train2014", "val": "val2014"}  # prepared list -> COCO split (folder, json, released subfolder)
RELEASED_DIR = "SegmentationClass"
MASK_SOURCES = ("released", "convert")
# A label PNG of an image of a 2014 split, named by the image's id (the authors' evaluate_png.py reads <id>.png).
MASK_NAME = re.compile(r"^COCO_(train2014|val2014)_\d{12}\.png$")


def raw_dir(root: str | os.PathLike) -> Path:
    return Path(root) / RAW_DIR


def instances_json(raw: str | os.PathLike, split: str) -> Path:
    return Path(raw) / ARCHIVES["annotations"].member / f"instances_{SPLITS[split]}.json"


def images_dir(raw: str | os.PathLike, split: str) -> Path:
    return Path(raw) / ARCHIVES[SPLITS[split]].member


@dataclass
class CocoSplit:
    """One split's instance annotations, by image id."""
    json_path: Path
    images_dir: Path
    class_names: list[str]                               # label 1.. in order
    images: dict[str, tuple[int, int, str]] = field(default_factory=dict)  # id -> (height, width, file name)
    instances: dict[str, list] = field(default_factory=dict)              # id -> [masks.Instance]

    def annotated_ids(self) -> list[str]:
        """The ids of the images that carry at least one annotation, sorted (the authors' lists)."""
        return sorted(i for i in self.images if self.instances.get(i))

    def labels(self, image_id: str) -> set[int]:
        """The labels (1..C) of every annotation of the image, crowd ones included."""
        return {inst[0] for inst in self.instances.get(image_id, [])}


def _reextract_hint(json_path: Path) -> str:
    return (f"delete {json_path.parent} and rerun, so that it is extracted again from "
            f"{Path(ARCHIVES['annotations'].url).name} (md5-checked)")


def class_names_of(categories: list[dict]) -> tuple[dict[int, int], list[str]]:
    """(category_id -> label 1..C, names) in ascending category_id; spaces become '_' (labels.txt's spelling)."""
    ordered = sorted(categories, key=lambda c: int(c["id"]))
    return ({int(c["id"]): k + 1 for k, c in enumerate(ordered)},
            [str(c["name"]).strip().replace(" ", "_") for c in ordered])


def load_split(json_path: str | os.PathLike, images: str | os.PathLike) -> CocoSplit:
    """Read a COCO instances file; every bad annotation is collected and reported in one BadInputError."""
    json_path = Path(json_path)
    try:
        with open(json_path, "rb") as fh:
            data = json.load(fh)
        to_label, names = class_names_of(data["categories"])
        image_entries, annotations = data["images"], data["annotations"]
    except FileNotFoundError:
        raise BadInputError(f"{json_path}: instances file is missing; {_reextract_hint(json_path)}") from None
    except (ValueError, UnicodeDecodeError) as err:  # JSONDecodeError is a ValueError
        raise BadInputError(f"{json_path}: not a readable JSON file ({err}); {_reextract_hint(json_path)}") from err
    except (KeyError, TypeError) as err:
        raise BadInputError(f"{json_path}: not a COCO instances file (no usable 'images', 'annotations' and "
                            f"'categories': {err!r}); {_reextract_hint(json_path)}") from err
    split = CocoSplit(json_path, Path(images), names)
    problems: list[Problem] = []
    by_coco_id: dict[int, str] = {}
    for entry in image_entries:
        try:
            image_id = Path(entry["file_name"]).stem
            split.images[image_id] = (int(entry["height"]), int(entry["width"]), str(entry["file_name"]))
            by_coco_id[int(entry["id"])] = image_id
        except (KeyError, TypeError, ValueError) as err:
            problems.append(Problem(str(json_path), f"image entry {str(entry)[:80]} lacks {err!r}",
                                    _reextract_hint(json_path)))
    if len(split.images) != len(image_entries):
        problems.append(Problem(str(json_path), f"{len(image_entries)} image entries but {len(split.images)} "
                                "distinct file names", _reextract_hint(json_path)))
    for ann in annotations:
        try:
            image_id = by_coco_id.get(int(ann["image_id"]))
            label = to_label.get(int(ann["category_id"]))
            instance = (label, bool(ann.get("iscrowd", 0)), ann["segmentation"], int(ann["id"]))
        except (KeyError, TypeError, ValueError) as err:
            problems.append(Problem(str(json_path), f"annotation {str(ann)[:80]} lacks {err!r}",
                                    _reextract_hint(json_path)))
            continue
        if image_id is None or label is None:
            what = (f"image_id {ann['image_id']} is not among the file's images" if image_id is None
                    else f"category_id {ann['category_id']} is not among the file's categories")
            problems.append(Problem(str(json_path), f"annotation {ann['id']}: {what}", _reextract_hint(json_path)))
            continue
        split.instances.setdefault(image_id, []).append(instance)
    raise_problems(problems, f"load_split ({json_path})")
    return split


def _jobs(split: CocoSplit, ids: list[str], out_dir: Path, ready_dir: Path | None, num_classes: int) -> list:
    jobs = []
    for image_id in ids:
        height, width, file_name = split.images[image_id]
        image = split.images_dir / file_name
        if ready_dir is None:
            jobs.append((image_id, image, height, width, split.instances[image_id], split.json_path, out_dir))
        else:
            jobs.append((image_id, image, height, width, split.json_path, ready_mask(ready_dir, split, image_id),
                         num_classes, out_dir))
    return jobs


def ready_mask(ready_dir: Path, split: CocoSplit, image_id: str) -> Path:
    """A ready-made mask: `<dir>/<train2014|val2014>/<id>.png` (the authors' layout), else `<dir>/<id>.png`."""
    nested, flat = Path(ready_dir) / split.images_dir.name / f"{image_id}.png", Path(ready_dir) / f"{image_id}.png"
    return flat if flat.exists() and not nested.exists() else nested


def write_masks(split: CocoSplit, ids: list[str], out_dir: str | os.PathLike, processes: int = 1,
                ready_dir: str | os.PathLike | None = None) -> list[Problem]:
    """`<out_dir>/<id>.png` for `ids`: converted from the instances, or (`ready_dir`) checked and hard-linked.

    Images are checked on the way (full decode, size as annotated). Returns the problems instead of
    raising. One image per call of the worker: the output never depends on `processes`.
    """
    num_classes = len(split.class_names)
    jobs = _jobs(split, ids, Path(out_dir), None if ready_dir is None else Path(ready_dir), num_classes)
    worker = convert_chunk if ready_dir is None else ready_chunk
    problems, hidden = [], 0
    for chunk in map_chunks(worker, chunks(jobs, processes), processes):
        for _, found, unseen in chunk:
            problems += found
            hidden += bool(unseen)
    if hidden:
        log.info("%s: %d images have an annotated class without a pixel of its own (crowd only, or covered); "
                 "labels.csv keeps it", split.json_path.name, hidden)
    return problems


def convert_shard(root: str | os.PathLike, split: str, shard: int, num_shards: int, out_dir: str | os.PathLike,
                  processes: int = 1) -> int:
    """Convert shard `shard` of `num_shards` of a split's annotated images into `out_dir` (atomic).

    The shards' folders merged (wsss.core.sharding.merge_dirs) are the `masks_dir` of prepare_coco14.
    """
    data = load_split(instances_json(raw_dir(root), split), images_dir(raw_dir(root), split))
    ids = shard_ids(data.annotated_ids(), shard, num_shards)
    with atomic_dir(out_dir) as tmp:
        raise_problems(write_masks(data, ids, tmp, processes), f"convert_shard ({split} {shard}/{num_shards})")
    return len(ids)


def prepare_coco14(root: str | os.PathLike, out_dir: str | os.PathLike, classes: list[str], masks: str = "convert",
                   masks_dir: str | os.PathLike | None = None, processes: int = 1) -> dict[str, int]:
    """Build the prepared layout in `out_dir` (atomically) from the extracted archives under `root`/coco2014.

    `masks`: `convert` rasterises the instances (or takes `masks_dir`, converted shards merged);
    `released` checks and links the authors' masks in `masks_dir` (default R/coco2014/SegmentationClass).
    Any problem stops the run with one BadInputError listing the bad files; nothing is written then.
    """
    if masks not in MASK_SOURCES:
        raise BadInputError(f"dataset.coco14.masks is '{masks}'; use one of {', '.join(MASK_SOURCES)}")
    raw = raw_dir(root)
    if masks == "released" and masks_dir is None:
        masks_dir = raw / RELEASED_DIR
    if masks_dir is not None and not Path(masks_dir).is_dir():
        fix = ("download the authors' masks, or set dataset.coco14.masks: convert" if masks == "released"
               else "rerun the conversion shards")
        raise BadInputError(f"{masks_dir}: folder of ready-made COCO masks is missing; {fix}")
    splits = {name: load_split(instances_json(raw, name), images_dir(raw, name)) for name in SPLITS}
    for data in splits.values():
        if data.class_names != list(classes):
            raise BadInputError(f"{data.json_path}: its categories are {data.class_names} but dataset.classes lists "
                                f"{list(classes)}; set dataset.classes to the file's categories, in ascending id")
    ids = {name: data.annotated_ids() for name, data in splits.items()}
    with prepared_dir(out_dir, boundaries=False) as tmp:
        problems = []
        for name, data in splits.items():
            problems += write_masks(data, ids[name], tmp / PREPARED["masks"], processes, masks_dir)
        raise_problems(problems, f"prepare_coco14 ({raw}, masks: {masks})")
        images, labels = {}, {}
        for name, data in splits.items():
            for image_id in ids[name]:
                images[image_id] = data.images_dir / data.images[image_id][2]
                labels[image_id] = sorted(data.labels(image_id))  # every annotated class, crowd ones included
            log.info("%s: %d of %d images carry annotations; the %d without are left out", data.json_path.name,
                     len(ids[name]), len(data.images), len(data.images) - len(ids[name]))
        counts = finish(tmp, classes, images, labels, {"train_aug": ids["train"], "train": ids["train"],
                                                        "val": ids["val"]})
    log.info("prepared %s: %s", out_dir, counts)
    return counts


def extract_released_masks(archive: str | os.PathLike, out_dir: str | os.PathLike) -> dict[str, int]:
    """The authors' released masks (a zip or tar, whatever its nesting) → `out_dir/<train2014|val2014>/<id>.png`.

    Every PNG named as an image of a 2014 split (MASK_NAME) is taken wherever it lies in the archive,
    so the layout ready_mask reads does not depend on how the archive nests them; the other files
    are left out. Whether every annotated image has one, and each is a valid label map, is checked
    by prepare_coco14. Returns the number of masks per split.
    """
    archive, out_dir = Path(archive), Path(out_dir)
    fix = (f"Delete {archive} and rerun, so that the weights stage downloads it again, or set "
           "dataset.coco14.masks: convert")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    counts = {split: 0 for split in SPLITS.values()}
    with tempfile.TemporaryDirectory(prefix=".extract.", dir=out_dir.parent) as raw, atomic_dir(out_dir) as tmp:
        extract_all(archive, Path(raw), fix)
        twice = []
        for folder, _, files in os.walk(raw):
            for name in files:
                match = MASK_NAME.match(name)
                if not match:
                    continue
                target = tmp / match.group(1) / name
                if target.exists():
                    twice.append(name)
                    continue
                target.parent.mkdir(exist_ok=True)
                os.replace(Path(folder) / name, target)
                counts[match.group(1)] += 1
        if twice or not any(counts.values()):
            what = (f"holds {len(twice)} mask names twice (e.g. {', '.join(sorted(twice)[:3])})" if twice else
                    "holds no PNG named as a COCO 2014 image (COCO_train2014_<12 digits>.png)")
            raise BadInputError(f"{archive}: {what}; is it the authors' MS-COCO 2014 mask archive? {fix}")
    log.info("released masks: %s from %s", counts, archive)
    return counts
