"""MS-COCO instances → one semantic label map per image, and the check of ready-made label maps.

The rasterisation rule (the `convert` setting of dataset.coco14.masks), stated once here:
- label 0 is background; a category's label is 1 + its rank among the annotation file's categories
  in ascending `category_id` (COCO's ids 1..90 have gaps: they become 1..80, the order of the
  authors' metadata/coco/labels.txt);
- crowd regions (`iscrowd` 1) are 255, ignored by training and evaluation, wherever no individual
  instance covers them. A crowd outline is coarse: it wraps many objects and the background between
  them, so neither the class nor background is the truth there; COCO's own evaluation ignores them
  too. Individually annotated instances inside a crowd keep their label: their outlines are exact;
- individual instances are drawn from the largest to the smallest (area of the rasterised mask,
  ties by annotation id), so an object lying on a larger one (a cup on a dining table, whose outline
  often includes the cup) stays visible instead of vanishing under it.
Polygons, uncompressed RLE (a list of counts) and compressed RLE (a string) are decoded by
pycocotools. A polygon of fewer than three points has no area and is skipped: pycocotools would
read a 4-number polygon as a box.

Ready-made maps (the authors' released masks, or masks converted by shards) are checked instead:
one channel, values 0..C or 255, the size of their image.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from pycocotools import mask as coco_mask

from wsss.core.io import IGNORE_INDEX, link_or_copy, write_label_png
from wsss.data.validate import Problem, check_image, read_label_mask

# One instance, as a worker receives it: (label 1..C, iscrowd, segmentation, annotation id).
Instance = tuple[int, bool, object, int]


def instance_rle(segmentation, height: int, width: int) -> dict:
    """The RLE of one annotation's `segmentation` (polygons, uncompressed or compressed RLE); ValueError if bad."""
    if isinstance(segmentation, list):
        polygons = [p for p in segmentation if isinstance(p, list) and len(p) >= 6]
        if any(len(p) % 2 for p in polygons):
            raise ValueError("a polygon has an odd number of coordinates")
        if not polygons:  # no polygon with an area: an empty mask
            return coco_mask.encode(np.zeros((height, width), np.uint8, order="F"))
        return coco_mask.merge(coco_mask.frPyObjects(polygons, height, width))
    if not isinstance(segmentation, dict) or "counts" not in segmentation or "size" not in segmentation:
        raise ValueError(f"segmentation is neither polygons nor an RLE dict ({type(segmentation).__name__})")
    size = [int(v) for v in segmentation["size"]]
    if size != [height, width]:
        raise ValueError(f"RLE size {size[1]}x{size[0]} differs from the image's {width}x{height}")
    counts = segmentation["counts"]
    if isinstance(counts, list):  # uncompressed: run lengths, column-major, starting with zeros
        if sum(counts) != height * width:
            raise ValueError(f"RLE counts sum to {sum(counts)}, not {height}x{width} = {height * width}")
        return coco_mask.frPyObjects(segmentation, height, width)
    if isinstance(counts, (str, bytes)):  # compressed: pycocotools' string form
        return {"size": size, "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    raise ValueError(f"RLE counts of type {type(counts).__name__}")


def decode(rle: dict) -> np.ndarray:
    """The (H, W) bool mask of an RLE."""
    # pycocotools 2.0.11 hands numpy 2 an `__array__` without the `copy` keyword: numpy copies instead
    # and warns on every call. The result is right; the warning is noise.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"__array__ implementation doesn't accept a copy keyword",
                                category=DeprecationWarning)
        return coco_mask.decode(rle).astype(bool)


def rasterize(instances: list[Instance], height: int, width: int) -> np.ndarray:
    """The (height, width) uint8 label map of one image's instances, by the module's rule."""
    label = np.zeros((height, width), np.uint8)
    crowd, single = [], []
    for value, iscrowd, segmentation, ann_id in instances:
        rle = instance_rle(segmentation, height, width)
        (crowd if iscrowd else single).append((int(coco_mask.area(rle)), ann_id, value, rle))
    for _, _, _, rle in crowd:
        label[decode(rle)] = IGNORE_INDEX
    for _, _, value, rle in sorted(single, key=lambda s: (-s[0], s[1])):
        label[decode(rle)] = value
    return label


def _image_problems(image_path: Path, height: int, width: int, source: str) -> list[Problem]:
    """The image decodes to the last byte and has the size the annotation file gives it."""
    shape, problems = check_image(image_path)
    if shape is not None and shape != (height, width):
        problems.append(Problem(str(image_path), f"image is {shape[1]}x{shape[0]} but {source} says {width}x{height}"))
    # The folder is one archive member: extracting it again from its md5-checked zip is the fix.
    fix = (f"delete {image_path.parent} and rerun, so that it is extracted again from {image_path.parent.name}.zip "
           "(md5-checked); if the file is still missing, the archive is not the 2014 release the annotations "
           "describe")
    return [Problem(p.path, p.what + (f" (listed in {source})" if p.what == "image is missing" else ""), fix)
            for p in problems]


def convert_one(job) -> tuple[str, list[Problem], list[int]]:
    """Check one image and write its label map: (id, problems, labels annotated but without a pixel)."""
    image_id, image_path, height, width, instances, json_path, out_dir = job
    problems = _image_problems(Path(image_path), height, width, Path(json_path).name)
    try:
        label = rasterize(instances, height, width)
    except (ValueError, TypeError, OverflowError) as err:
        ann_ids = ", ".join(str(i[3]) for i in instances)
        return image_id, problems + [Problem(str(json_path), f"image {image_id}, annotations {ann_ids}: {err}",
                                             f"re-extract {Path(json_path).name} from annotations_trainval2014.zip "
                                             f"(delete {Path(json_path).parent} and rerun)")], []
    if problems:
        return image_id, problems, []
    write_label_png(Path(out_dir) / f"{image_id}.png", label)
    present = set(np.unique(label).tolist())
    return image_id, [], sorted({i[0] for i in instances} - present)


def convert_chunk(jobs: list) -> list:
    return [convert_one(j) for j in jobs]


def ready_one(job) -> tuple[str, list[Problem], list[int]]:
    """Check one ready-made label map (and its image) and hard-link it into `out_dir`."""
    image_id, image_path, height, width, json_path, mask_path, num_classes, out_dir = job
    problems = _image_problems(Path(image_path), height, width, Path(json_path).name)
    if not os.path.exists(mask_path):
        return image_id, problems + [Problem(str(mask_path), "label map is missing for an annotated image",
                                             "use the complete released archive, or dataset.coco14.masks: convert")], []
    mask, found = read_label_mask(Path(mask_path), num_classes, (height, width))
    problems += found
    if problems:
        return image_id, problems, []
    link_or_copy(mask_path, Path(out_dir) / f"{image_id}.png")
    return image_id, [], []


def ready_chunk(jobs: list) -> list:
    return [ready_one(j) for j in jobs]
