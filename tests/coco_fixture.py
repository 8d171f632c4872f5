"""A tiny MS-COCO 2014 in the real archive layout, for the coco14 source's tests.

Five train and two val images of 10x8 px, annotated so that every case of the conversion shows in
a few pixels: polygons (one annotation with two), uncompressed RLE (a crowd region), compressed RLE,
objects overlapping (the smaller listed first), category ids with gaps (1, 3, 18, 89, 90, listed out
of order), one image per split without annotations, a greyscale and a CMYK JPEG. The RLE strings are
encoded here from the format's definition, not by the library under test.

The archives hold what the real ones hold where the converter looks: `train2014/<file>.jpg`,
`val2014/<file>.jpg`, `annotations/instances_{train,val}2014.json` (+ a captions file the
extraction must skip).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

H, W = 8, 10
CATEGORIES = [{"id": 90, "name": "toothbrush", "supercategory": "indoor"},
              {"id": 1, "name": "person", "supercategory": "person"},
              {"id": 18, "name": "dog", "supercategory": "animal"},
              {"id": 89, "name": "hair drier", "supercategory": "indoor"},
              {"id": 3, "name": "car", "supercategory": "vehicle"}]
CLASSES = ["person", "car", "dog", "hair_drier", "toothbrush"]  # ascending category id: labels 1..5


def rect(x0: int, y0: int, x1: int, y1: int) -> list[float]:
    """A polygon covering columns x0..x1-1 and rows y0..y1-1 (COCO's pixel-corner convention)."""
    return [x0, y0, x1, y0, x1, y1, x0, y1]


def rle_counts(binary: np.ndarray) -> list[int]:
    """Run lengths of a binary mask in column-major order, starting with a run of zeros."""
    flat = np.asarray(binary, bool).flatten(order="F")
    counts, current, run = [], False, 0
    for v in flat:
        if v != current:
            counts.append(run)
            current, run = v, 0
        run += 1
    return counts + [run]


def rle_string(counts: list[int]) -> str:
    """COCO's compressed RLE: each count (minus the one two back, from the third on) in 5-bit groups,
    low first, bit 0x20 = more groups follow, each group + 48 as a character."""
    out = []
    for i, count in enumerate(counts):
        x = count - counts[i - 2] if i > 2 else count
        while True:
            c = x & 0x1F
            x >>= 5
            more = (x != -1) if c & 0x10 else (x != 0)
            out.append(chr((c | 0x20 if more else c) + 48))
            if not more:
                break
    return "".join(out)


def _car_block() -> np.ndarray:
    m = np.zeros((H, W), np.uint8)
    m[3:5, 3:7] = 1
    return m


def _diagonal() -> np.ndarray:
    m = np.zeros((H, W), np.uint8)
    m[np.arange(H), np.arange(H)] = 1
    return m


# (file stem, image mode, fill, [(annotation id, category id, iscrowd, segmentation)])
TRAIN = [
    ("COCO_train2014_000000000009", "RGB", (200, 40, 40), [
        (101, 18, 0, [rect(2, 2, 4, 4)]),                      # small dog, listed first
        (102, 1, 0, [rect(0, 0, 6, 6)]),                       # large person under it
        (103, 90, 0, [rect(7, 0, 10, 2), rect(7, 6, 10, 8)]),  # one toothbrush in two polygons
    ]),
    ("COCO_train2014_000000000025", "RGB", (40, 200, 40), [
        # crowd of people, uncompressed RLE: rows 1..6 of columns 0..4
        (201, 1, 1, {"size": [H, W], "counts": [1, 6, 2, 6, 2, 6, 2, 6, 2, 6, 41]}),
        (202, 3, 0, {"size": [H, W], "counts": rle_string(rle_counts(_car_block()))}),  # car, compressed RLE
        (203, 18, 0, [rect(1, 2, 3, 4)]),                      # a dog inside the crowd
    ]),
    ("COCO_train2014_000000000030", "L", 128, [(301, 89, 0, [rect(5, 4, 10, 8)])]),
    ("COCO_train2014_000000000034", "CMYK", (0, 255, 255, 0), [
        (401, 90, 0, {"size": [H, W], "counts": rle_string(rle_counts(_diagonal()))}),
    ]),
    ("COCO_train2014_000000000036", "RGB", (90, 90, 200), []),  # no annotation
]
VAL = [
    ("COCO_val2014_000000000042", "RGB", (10, 120, 220), [(501, 18, 0, [rect(0, 0, 10, 2)])]),
    ("COCO_val2014_000000000073", "RGB", (220, 120, 10), []),  # no annotation
]


def instances(items: list, folder: str) -> dict:
    images, annotations = [], []
    for stem, _, _, anns in items:
        coco_id = int(stem.rsplit("_", 1)[1])
        images.append({"id": coco_id, "file_name": f"{stem}.jpg", "height": H, "width": W, "license": 1})
        for ann_id, cat, crowd, seg in anns:
            annotations.append({"id": ann_id, "image_id": coco_id, "category_id": cat, "iscrowd": crowd,
                                "segmentation": seg, "area": 0.0, "bbox": [0, 0, 0, 0]})
    return {"info": {"description": f"fixture {folder}"}, "licenses": [], "images": images,
            "annotations": annotations, "categories": CATEGORIES}


def _zip(path: Path, folder: str, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{folder}/", b"")
        for name, data in files.items():
            zf.writestr(f"{folder}/{name}", data)
    return path


def _jpeg(mode: str, fill) -> bytes:
    import io

    buf = io.BytesIO()
    Image.new(mode, (W, H), fill).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def build_archives(out: str | Path) -> dict[str, Path]:
    """Write train2014.zip, val2014.zip and annotations_trainval2014.zip into `out`; name -> path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    zips = {}
    for folder, items in (("train2014", TRAIN), ("val2014", VAL)):
        zips[folder] = _zip(out / f"{folder}.zip", folder,
                            {f"{stem}.jpg": _jpeg(mode, fill) for stem, mode, fill, _ in items})
    zips["annotations"] = _zip(out / "annotations_trainval2014.zip", "annotations", {
        "instances_train2014.json": json.dumps(instances(TRAIN, "train2014")).encode(),
        "instances_val2014.json": json.dumps(instances(VAL, "val2014")).encode(),
        "captions_train2014.json": b'{"annotations": []}',
    })
    return zips
