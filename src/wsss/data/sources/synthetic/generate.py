"""Data source `synthetic`: the embedded benchmark, written in the exact on-disk layout of VOC 2012 +
SBD and then prepared by the voc source's own code (wsss.data.sources.voc).

It is built to show the three problems EPS attacks (Lee et al., CVPR 2021):
- co-occurring context that is not a class: a railroad band under `train`, water under `boat`;
- objects larger than their discriminative part: a textured grey body, the class colour only on
  the top `discriminative_fraction` of the object, so CAMs fire on the top;
- boundaries: smooth cluttered backgrounds, pixel noise, thin 255 borders in the VOC masks.
A DUTS-style saliency set comes with it whose masks often leave out one class, a systematic bias
like that of saliency models trained on real data.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io
import scipy.sparse
from scipy import ndimage

from wsss.core.io import atomic_dir, link_or_copy, write_gray_png, write_id_list, write_image, write_label_png
from wsss.core.parallel import chunks, map_chunks
from wsss.core.schema import schema_defaults
from wsss.data.layout import CONTEXT_CLASSES, DUTS, inside
from wsss.data.prepared import mask_boundary
from wsss.data.sources.voc import SBD, VOC

# Saturated, well separated class colours (RGB); cycled if there are more classes.
CLASS_COLOURS = [(220, 40, 40), (40, 90, 230), (235, 200, 30), (40, 180, 70), (200, 50, 200), (30, 200, 210),
                 (240, 130, 30), (130, 70, 200)]
SHAPES = ["wide", "hull", "disc", "square", "diamond", "star"]
CONTEXT_NAMES = ["railroad", "water"]  # scene label k+1 in context/<id>.png


@dataclass
@schema_defaults("dataset.synthetic")
class SyntheticConfig:
    seed: int
    image_size: int
    num_train: int
    num_val: int
    voc_train_fraction: float
    num_saliency: int
    objects_per_image: tuple[int, int]
    object_size: tuple[int, int]
    large_object_size: tuple[int, int]
    large_classes: list[str]
    discriminative_fraction: float
    context: dict[str, str]
    context_probability: float
    context_other_probability: float
    context_height: tuple[int, int]
    saliency_missed_class: str | None
    saliency_miss_probability: float
    noise_std: float


def shape_mask(kind: str, h: int, w: int) -> np.ndarray:
    """Boolean (h, w) silhouette of a shape filling its box."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    u = (xx + 0.5) / w * 2 - 1  # [-1, 1]
    v = (yy + 0.5) / h * 2 - 1
    if kind == "wide" or kind == "square":
        return np.ones((h, w), bool)
    if kind == "hull":  # a boat hull: wide deck, narrower keel, a small cabin on top
        deck = (v > -0.2) & (np.abs(u) < 1 - 0.45 * (v + 0.2) / 1.2)
        cabin = (v <= -0.2) & (np.abs(u + 0.1) < 0.35)
        return deck | cabin
    if kind == "disc":
        return u**2 + v**2 <= 1.0
    if kind == "diamond":
        return np.abs(u) + np.abs(v) <= 1.0
    if kind == "star":
        r = np.hypot(u, v)
        theta = np.arctan2(v, u)
        return r <= 0.55 + 0.45 * np.cos(5 * theta) ** 2
    raise ValueError(kind)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth random gradient with low-frequency blotches, muted colours."""
    c0, c1 = rng.uniform(60, 200, size=(2, 3))
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:size, 0:size] / size
    t = (np.cos(angle) * xx + np.sin(angle) * yy)
    t = (t - t.min()) / (np.ptp(t) + 1e-6)
    img = c0[None, None] * (1 - t[..., None]) + c1[None, None] * t[..., None]
    blotch = ndimage.gaussian_filter(rng.normal(0, 1, (size, size)), sigma=size / 8)
    img += 25 * (blotch / (np.abs(blotch).max() + 1e-6))[..., None]
    return img


def _grey_clutter(rng: np.random.Generator, img: np.ndarray) -> None:
    """Small grey patches like the object bodies, so grey texture alone is not a class cue."""
    size = img.shape[0]
    for _ in range(int(rng.integers(2, 5))):
        h, w = rng.integers(3, max(4, size // 7), size=2)
        y, x = rng.integers(0, size - h), rng.integers(0, size - w)
        img[y:y + h, x:x + w] = rng.uniform(90, 170)


def _draw_context(rng: np.random.Generator, img, ctx, kind: str, y: int, x0: int, x1: int, height: int):
    """Draw a railroad or water band occupying rows y..y+height, columns x0..x1."""
    size = img.shape[0]
    y1 = min(size, y + height)
    cols = np.arange(x0, x1)
    if kind == "railroad":
        band = np.zeros((y1 - y, x1 - x0, 3)) + (105, 75, 45)  # ballast
        band[:, (cols - x0) % 4 == 0] = (60, 40, 25)  # sleepers
        band[1:2] = band[-2:-1] = (170, 170, 175)  # rails
        region = np.ones((y1 - y, x1 - x0), bool)
    else:
        yy, xx = np.mgrid[y:y1, x0:x1]
        phase = rng.uniform(0, 2 * np.pi)
        top = y + 1.5 + 1.5 * np.sin(xx / 3.0 + phase)
        region = yy >= top
        band = np.zeros((y1 - y, x1 - x0, 3)) + (45, 95, 175)
        band[((yy - top) % 3 < 1) & region] = (120, 170, 225)  # wave crests
    sub = img[y:y1, x0:x1]
    sub[region] = band[region]
    ctx[y:y1, x0:x1][region] = CONTEXT_NAMES.index(kind) + 1


def render(rng: np.random.Generator, cfg: SyntheticConfig, classes: list[str]):
    """One image: (H, W, 3) uint8, label map (H, W) uint8 without borders, context map (H, W) uint8."""
    size = cfg.image_size
    img = _background(rng, size)
    _grey_clutter(rng, img)
    label = np.zeros((size, size), np.uint8)
    ctx = np.zeros((size, size), np.uint8)
    n = int(rng.integers(cfg.objects_per_image[0], cfg.objects_per_image[1] + 1))
    chosen = rng.choice(len(classes), size=min(n, len(classes)), replace=False)
    placed_context = set()
    objects = []
    for c in chosen:
        name = classes[c]
        lo, hi = cfg.large_object_size if name in cfg.large_classes else cfg.object_size
        side = int(rng.integers(lo, hi + 1))
        kind = SHAPES[c % len(SHAPES)]
        h, w = (max(6, int(side * 0.6)), side) if kind in ("wide", "hull") else (side, side)
        context = cfg.context.get(name) if rng.random() < cfg.context_probability else None
        band = int(rng.integers(cfg.context_height[0], cfg.context_height[1] + 1)) if context else 0
        y = int(rng.integers(0, max(1, size - h - band)))
        x = int(rng.integers(0, max(1, size - w)))
        objects.append((c, kind, y, x, h, w))
        if context:
            _draw_context(rng, img, ctx, context, y + h - 1, x, x + w, band)
            placed_context.add(context)
    # Context with no class: rare bands elsewhere so context alone is not a perfect class cue.
    for kind in sorted(set(cfg.context.values()) - placed_context):
        if rng.random() < cfg.context_other_probability:
            width = int(rng.integers(cfg.object_size[0], cfg.object_size[1] + 1))
            band = int(rng.integers(cfg.context_height[0], cfg.context_height[1] + 1))
            _draw_context(rng, img, ctx, kind, int(rng.integers(0, size - band)),
                          *(lambda x0: (x0, x0 + width))(int(rng.integers(0, size - width))), band)
    for c, kind, y, x, h, w in objects:
        sil = shape_mask(kind, h, w)
        yy, xx = np.mgrid[0:h, 0:w]
        grey = rng.uniform(100, 160) + 18 * np.sin((xx + yy) * rng.uniform(0.8, 1.6))  # textured body
        body = np.repeat(grey[..., None], 3, axis=2)
        rows = np.where(sil.any(axis=1))[0]
        top_rows = rows[0] + max(1, int(round(cfg.discriminative_fraction * (rows[-1] - rows[0] + 1))))
        colour = np.array(CLASS_COLOURS[c % len(CLASS_COLOURS)], float) * rng.uniform(0.85, 1.1)
        body[:top_rows] = colour + rng.normal(0, 6, size=(top_rows, w, 3))
        region = img[y:y + h, x:x + w]
        region[sil] = body[sil]
        label[y:y + h, x:x + w][sil] = c + 1
        ctx[y:y + h, x:x + w][sil] = 0
    img += rng.normal(0, cfg.noise_std, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8), label, ctx


def class_boundaries(label: np.ndarray, num_classes: int) -> list[np.ndarray]:
    """SBD-style per-class boundary masks: boundary pixels of each class's region."""
    border = mask_boundary(label)
    return [border & (label == c) for c in range(1, num_classes + 1)]


def write_sbd_mat(path: str | os.PathLike, label: np.ndarray, num_classes: int) -> None:
    """Write an SBD `cls/<id>.mat`: struct GTcls with Segmentation, Boundaries (cell of sparse), CategoriesPresent."""
    cells = np.empty((num_classes, 1), dtype=object)
    for i, b in enumerate(class_boundaries(label, num_classes)):
        cells[i, 0] = scipy.sparse.csc_matrix(b)
    present = np.unique(label[(label > 0) & (label < 255)]).astype(np.uint8).reshape(-1, 1)
    gt = {"Segmentation": label.astype(np.uint8), "Boundaries": cells, "CategoriesPresent": present}
    tmp = Path(path).with_suffix(".tmp.mat")
    scipy.io.savemat(tmp, {"GTcls": gt}, do_compression=True)
    os.replace(tmp, path)


def make_splits(cfg: SyntheticConfig) -> dict[str, list[str]]:
    """Image ids and the VOC/SBD split lists, mirroring how VOC 2012 and SBD overlap."""
    ids = [f"2012_{i:06d}" for i in range(cfg.num_train + cfg.num_val)]
    train, val = ids[: cfg.num_train], ids[cfg.num_train:]
    n_voc = max(1, round(cfg.voc_train_fraction * cfg.num_train))
    # SBD covers the second half of VOC train, the SBD-only pool, and a fifth of VOC val
    # (which prepare_dataset must drop from train_aug, as with the real data).
    sbd = train[n_voc // 2:] + val[: max(1, cfg.num_val // 5)]
    return {"all": ids, "voc_train": train[:n_voc], "voc_val": val,
            "sbd_train": [s for k, s in enumerate(sbd) if k % 4], "sbd_val": sbd[::4]}


def _write_scenes(args: tuple) -> int:
    """Render and write one chunk of the VOC-layout images (wsss.core.parallel worker).

    Each image has its own random stream ([seed, 1, k]), so the files do not depend on the chunks.
    """
    cfg, classes, items, seg_ids, sbd_ids, dirs = args
    images_dir, masks_dir, context, cls_dir, img_dir = (Path(d) for d in dirs)
    for k, image_id in items:
        img, label, ctx = render(np.random.default_rng([cfg.seed, 1, k]), cfg, classes)
        write_image(images_dir / f"{image_id}.jpg", img)
        write_label_png(context / f"{image_id}.png", ctx)
        if image_id in seg_ids:
            voc_label = label.copy()
            voc_label[mask_boundary(label)] = 255  # VOC marks object borders "void"
            write_label_png(masks_dir / f"{image_id}.png", voc_label)
        if image_id in sbd_ids:
            link_or_copy(images_dir / f"{image_id}.jpg", img_dir / f"{image_id}.jpg")
            write_sbd_mat(cls_dir / f"{image_id}.mat", label, len(classes))
    return len(items)


def _write_saliency_set(args: tuple) -> int:
    """Render and write one chunk of the DUTS-layout saliency set (stream [seed, 2, k])."""
    cfg, classes, ks, missed, dirs = args
    duts_images, duts_masks = (Path(d) for d in dirs)
    for k in ks:
        rng = np.random.default_rng([cfg.seed, 2, k])
        img, label, _ = render(rng, cfg, classes)
        salient = label > 0
        if missed is not None and (label == missed).any() and rng.random() < cfg.saliency_miss_probability:
            salient &= label != missed
        name = f"sal_{k:06d}"
        write_image(duts_images / f"{name}.jpg", img)
        write_gray_png(duts_masks / f"{name}.png", salient.astype(np.uint8) * 255)
    return len(ks)


def synthesize_dataset(out_voc, out_sbd, out_duts, out_context, classes: list[str], cfg: SyntheticConfig,
                       processes: int = 1) -> dict:
    """Write the benchmark: VOCdevkit/, benchmark_RELEASE/, DUTS-TR/ and context/ folders (each
    atomically, in wsss.data.layout's raw layouts), rendering over `processes` worker processes."""
    unknown = (set(cfg.context) | set(cfg.large_classes) | {cfg.saliency_missed_class} - {None}) - set(classes)
    if unknown:
        raise ValueError(f"dataset.synthetic names classes not in dataset.classes: {sorted(unknown)}")
    splits = make_splits(cfg)
    with atomic_dir(out_voc) as voc, atomic_dir(out_context) as context, atomic_dir(out_sbd) as sbd:
        images_dir, masks_dir, sets = (inside(voc, VOC, n) for n in ("images", "masks", "sets"))
        cls_dir, img_dir = inside(sbd, SBD, "cls"), inside(sbd, SBD, "img")
        for folder in (images_dir, masks_dir, sets, cls_dir, img_dir):
            folder.mkdir(parents=True)
        seg_ids = set(splits["voc_train"]) | set(splits["voc_val"])
        sbd_ids = set(splits["sbd_train"]) | set(splits["sbd_val"])
        dirs = tuple(str(d) for d in (images_dir, masks_dir, context, cls_dir, img_dir))
        jobs = [(cfg, classes, c, seg_ids, sbd_ids, dirs) for c in chunks(list(enumerate(splits["all"])), processes)]
        map_chunks(_write_scenes, jobs, processes)
        write_id_list(sets / "train.txt", splits["voc_train"])
        write_id_list(sets / "val.txt", splits["voc_val"])
        write_id_list(sets / "trainval.txt", splits["voc_train"] + splits["voc_val"])
        (context / CONTEXT_CLASSES).write_text("".join(f"{n}\n" for n in CONTEXT_NAMES))
        write_id_list(inside(sbd, SBD, "train"), splits["sbd_train"])
        write_id_list(inside(sbd, SBD, "val"), splits["sbd_val"])
    missed = None if cfg.saliency_missed_class is None else classes.index(cfg.saliency_missed_class) + 1
    with atomic_dir(out_duts) as duts:
        duts_images, duts_masks = inside(duts, DUTS, "images"), inside(duts, DUTS, "masks")
        duts_images.mkdir()
        duts_masks.mkdir()
        dirs = (str(duts_images), str(duts_masks))
        jobs = [(cfg, classes, c, missed, dirs) for c in chunks(list(range(cfg.num_saliency)), processes)]
        map_chunks(_write_saliency_set, jobs, processes)
    return {k: len(v) for k, v in splits.items()}
