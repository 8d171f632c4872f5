"""MS-COCO scale: conversion throughput (1 vs N processes) and the disk footprint of every
intermediate at COCO image size, on a synthetic COCO-format split written here.

    python -m wsss_dev.bench.coco --images 200 --processes 2 --out results/bench/coco.csv

Synthetic content (no COCO data offline): 640x480 JPEGs with 1-5 classes each (3 on average) drawn
as 1-8 objects (star-shaped polygons of 24-48 vertices in their class colour, over a textured
background; a later object may hide an earlier one) and their
instances JSON (polygons, plus a compressed-RLE crowd region on one image in ten). Every file is
written by the project's own writers (write_label_png, write_gray_png, save_maps) through the real
code paths (coco14 conversion, multiscale_maps, the pseudo-mask rules, the dense CRF). The maps come
from a colour-matching stand-in for the classifier with EPS's output stride (8): `smooth` is a
trained-like map, `noisy` adds feature-level noise as large as the signal (an upper bracket).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from pycocotools import mask as coco_mask

from wsss.data.sources.coco14 import prepare as coco14

NUM_CLASSES = 80


def _palette(num_classes: int) -> np.ndarray:
    rng = np.random.default_rng(1234)
    return rng.integers(30, 226, size=(num_classes, 3)).astype(np.float32)


def _star(rng, cx, cy, radius, vertices) -> list[float]:
    angles = np.sort(rng.uniform(0, 2 * np.pi, vertices))
    radii = radius * rng.uniform(0.55, 1.0, vertices)
    return [float(v) for a, r in zip(angles, radii) for v in (cx + r * np.cos(a), cy + r * np.sin(a))]


def write_synthetic_split(raw: Path, images: int, seed: int = 0, size=(480, 640), split: str = "train2014",
                          saliency: Path | None = None) -> Path:
    """`raw`/<split>/*.jpg and `raw`/annotations/instances_<split>.json; returns the JSON path. With
    `saliency`, each image's objects (blurred, as PFAN's soft edges) as `saliency`/<stem>.png too."""
    rng = np.random.default_rng(seed)
    h, w = size
    palette = _palette(NUM_CLASSES)
    folder = raw / split
    folder.mkdir(parents=True, exist_ok=True)
    entries, anns = [], []
    yy, xx = np.mgrid[0:h, 0:w]
    for k in range(images):
        stem = f"COCO_{split}_{k + 1:012d}"
        base = 90 + 40 * np.sin(xx / rng.uniform(40, 120)) + 30 * np.cos(yy / rng.uniform(40, 120))
        canvas = Image.fromarray(np.clip(base[..., None] + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(canvas)
        fg = Image.new("L", (w, h), 0)
        # 1-5 classes (3 on average: COCO images carry a few categories each), each drawn at least once
        classes = rng.choice(NUM_CLASSES, size=int(rng.integers(1, 6)), replace=False)
        for cls in [*classes, *rng.choice(classes, size=int(rng.integers(0, 4)))]:
            cls = int(cls)
            poly = _star(rng, rng.uniform(0.1, 0.9) * w, rng.uniform(0.1, 0.9) * h, rng.uniform(25, 170),
                         int(rng.integers(24, 49)))
            draw.polygon(poly, fill=tuple(int(v) for v in palette[cls]))
            ImageDraw.Draw(fg).polygon(poly, fill=255)
            anns.append({"id": len(anns) + 1, "image_id": k + 1, "category_id": 2 * cls + 1, "iscrowd": 0,
                         "segmentation": [poly]})
        if k % 10 == 9:  # a crowd region as compressed RLE
            crowd = np.zeros((h, w), np.uint8)
            crowd[h // 2:, : w // 3] = 1
            rle = coco_mask.encode(np.asfortranarray(crowd))
            anns.append({"id": len(anns) + 1, "image_id": k + 1, "category_id": 1, "iscrowd": 1,
                         "segmentation": {"size": [h, w], "counts": rle["counts"].decode("ascii")}})
        shade = canvas.filter(ImageFilter.GaussianBlur(1.2))
        shade.save(folder / f"{stem}.jpg", quality=90)
        if saliency is not None:
            saliency.mkdir(parents=True, exist_ok=True)
            fg.filter(ImageFilter.GaussianBlur(2)).save(saliency / f"{stem}.png")
        entries.append({"id": k + 1, "file_name": f"{stem}.jpg", "height": h, "width": w})
    categories = [{"id": 2 * c + 1, "name": f"class{c:02d}"} for c in range(NUM_CLASSES)]
    path = raw / "annotations" / f"instances_{split}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"images": entries, "annotations": anns, "categories": categories}))
    return path


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.iterdir()):
        h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()


def bench_coco_conversion(images: int = 200, processes: Sequence[int] = (1, 2), repeats: int = 1,
                          workdir: str | Path | None = None) -> list[dict]:
    """One row per process count: images/s of coco14 conversion (image check + rasterise + PNG write),
    pool start-up included; the JSON load is timed once on its own."""
    rows, digests = [], {}
    with tempfile.TemporaryDirectory(prefix="bench_coco.", dir=workdir) as tmp:
        raw = Path(tmp) / "raw"
        json_path = write_synthetic_split(raw, images)
        t0 = time.perf_counter()
        split = coco14.load_split(json_path, raw / "train2014")
        load_s = time.perf_counter() - t0
        ids = split.annotated_ids()
        for n in processes:
            best = float("inf")
            for r in range(repeats):
                out = Path(tmp) / f"masks_{n}_{r}"
                out.mkdir()
                t0 = time.perf_counter()
                problems = coco14.write_masks(split, ids, out, processes=n)
                best = min(best, time.perf_counter() - t0)
                assert not problems, problems[:3]
            digests[n] = _digest(out)
            rows.append({"stage": "coco_conversion", "processes": n, "images": len(ids), "seconds": round(best, 4),
                         "images_per_s": round(len(ids) / best, 2), "json_load_s": round(load_s, 4)})
    for row in rows:
        row["speedup"] = round(rows[0]["seconds"] / row["seconds"], 3)
        row["identical_output"] = digests[row["processes"]] == digests[processes[0]]
    return rows
