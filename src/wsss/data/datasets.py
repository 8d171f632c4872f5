"""Datasets every stage trains and infers on, reading only the prepared layout.

Items are keyed by `index` or `(index, sample_seed)`: augmentation is a pure function of the
seed, so the training loop can reproduce (and resume) any batch exactly, whatever the number
of DataLoader workers.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from wsss.core.images import normalize
from wsss.core.io import BadInputError, read_gray_u8, read_image, read_label_png


def read_labels_csv(path: str | os.PathLike) -> tuple[list[str], dict[str, np.ndarray]]:
    """Read prepared/labels.csv: `id` + one 0/1 column per class → (class names, id → (C,) float32)."""
    try:
        with open(path, newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader)
            if not header or header[0] != "id":
                raise BadInputError(f"{path}: first column must be 'id'; re-run prepare_dataset")
            labels = {row[0]: np.array([float(v) for v in row[1:]], dtype=np.float32) for row in reader if row}
    except FileNotFoundError:
        raise BadInputError(f"{path}: image-label table is missing; re-run prepare_dataset") from None
    return header[1:], labels


@dataclass
class TrainTransform:
    """Training augmentation: random long-side resize, flip, colour jitter (image only), random crop.

    The same geometry goes to image, saliency and mask. Returns (image uint8, pad, saliency,
    mask): `pad` is True where the crop window left the image, where the image must become its
    mean (0 after normalisation); there mask is 255 (ignored) and saliency 0.
    """

    crop_size: int
    scale_range: tuple[int, int] | None = None  # random long side in pixels, inclusive
    flip: bool = True
    color_jitter: float = 0.0  # max relative change of brightness, contrast and saturation
    resize_mode: str = "bilinear"  # image and saliency resize: bilinear | bicubic (the official EPS code)
    hue_jitter: float = 0.0  # max hue shift, as a fraction of the hue circle (official 0.1)

    def __call__(self, rng: np.random.Generator, image: np.ndarray, saliency=None, mask=None):
        h, w = image.shape[:2]
        if self.scale_range is not None:
            long_side = int(rng.integers(self.scale_range[0], self.scale_range[1] + 1))
            s = long_side / max(h, w)
            nh, nw = max(1, round(h * s)), max(1, round(w * s))
            mode = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}[self.resize_mode]
            image = np.asarray(Image.fromarray(image).resize((nw, nh), mode))
            if saliency is not None:
                saliency = np.asarray(Image.fromarray(saliency).resize((nw, nh), mode))
            if mask is not None:
                mask = np.asarray(Image.fromarray(mask).resize((nw, nh), Image.NEAREST))
            h, w = nh, nw
        if self.flip and rng.random() < 0.5:
            image = image[:, ::-1]
            saliency = None if saliency is None else saliency[:, ::-1]
            mask = None if mask is None else mask[:, ::-1]
        if self.color_jitter > 0:
            image = _jitter(rng, image, self.color_jitter)
        if self.hue_jitter > 0:  # drawn only when on, so the other settings keep their random stream
            image = _hue_shift(image, float(rng.uniform(-self.hue_jitter, self.hue_jitter)))
        # Random crop with padding: the crop window may extend past the image.
        c = self.crop_size
        top = int(rng.integers(min(0, h - c), max(0, h - c) + 1))
        left = int(rng.integers(min(0, w - c), max(0, w - c) + 1))
        crop = lambda a, fill: _crop(a, top, left, c, fill)  # noqa: E731
        image_out = crop(image, 0)
        pad = np.ones((c, c), dtype=bool)
        pad[max(-top, 0): max(min(h - top, c), 0), max(-left, 0): max(min(w - left, c), 0)] = False
        sal_out = None if saliency is None else crop(saliency, 0)
        mask_out = None if mask is None else crop(mask, 255)
        return image_out, pad, sal_out, mask_out


def _jitter(rng: np.random.Generator, image: np.ndarray, strength: float) -> np.ndarray:
    x = image.astype(np.float32)
    b, c, s = (1 + rng.uniform(-strength, strength, size=3)).tolist()
    # In place, each step as (x - m) * c + m: the same float32 values without temporaries.
    x *= b
    m = x.mean()
    x -= m
    x *= c
    x += m
    grey = x.mean(axis=2, keepdims=True)
    x -= grey
    x *= s
    x += grey
    return np.clip(x, 0, 255, out=x).astype(np.uint8)


def _hue_shift(image: np.ndarray, shift: float) -> np.ndarray:
    """Rotate the hue of an RGB uint8 image by `shift` of the hue circle (torchvision's adjust_hue)."""
    hsv = np.array(Image.fromarray(image).convert("HSV"))
    hsv[..., 0] = ((hsv[..., 0].astype(np.int16) + int(round(shift * 255))) % 256).astype(np.uint8)
    return np.asarray(Image.fromarray(hsv, mode="HSV").convert("RGB"))


def _crop(a: np.ndarray, top: int, left: int, size: int, fill) -> np.ndarray:
    """Crop a size×size window at (top, left), filling outside the array with `fill`."""
    shape = (size, size) + a.shape[2:]
    out = np.full(shape, fill, dtype=a.dtype)
    h, w = a.shape[:2]
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + size, h), min(left + size, w)
    if y1 > y0 and x1 > x0:
        out[y0 - top : y1 - top, x0 - left : x1 - left] = a[y0:y1, x0:x1]
    return out


class WSSSDataset(torch.utils.data.Dataset):
    """Image + image-level label (+ saliency map, + mask) per id of the prepared layout."""

    def __init__(self, ids, images_dir, labels_csv=None, saliency_dir=None, mask_dir=None,
                 transform: TrainTransform | None = None):
        self.ids = list(ids)
        self.images_dir = Path(images_dir)
        self.saliency_dir = None if saliency_dir is None else Path(saliency_dir)
        self.mask_dir = None if mask_dir is None else Path(mask_dir)
        self.transform = transform
        self.class_names, self.labels = (None, None)
        if labels_csv is not None:
            self.class_names, self.labels = read_labels_csv(labels_csv)
            missing = [i for i in self.ids if i not in self.labels]
            if missing:
                raise BadInputError(f"{labels_csv}: no image label for id '{missing[0]}' "
                                    f"({len(missing)} missing); re-run prepare_dataset")

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, key) -> dict:
        index, seed = key if isinstance(key, tuple) else (key, None)
        image_id = self.ids[index]
        image = read_image(self.images_dir / f"{image_id}.jpg")
        saliency = mask = None
        if self.saliency_dir is not None:
            path = self.saliency_dir / f"{image_id}.png"
            saliency = read_gray_u8(path)
            if saliency.shape != image.shape[:2]:
                raise BadInputError(f"{path}: saliency map is {saliency.shape[::-1]} but the image is "
                                    f"{image.shape[1::-1]} (w×h); re-run infer_saliency")
        if self.mask_dir is not None:
            mask = read_label_png(self.mask_dir / f"{image_id}.png")
        if self.transform is not None:
            rng = np.random.default_rng([index, 0 if seed is None else seed])
            image, pad, saliency, mask = self.transform(rng, image, saliency, mask)
            image_t = normalize(image)
            if pad.any():
                image_t[:, torch.from_numpy(pad)] = 0.0
        else:
            image_t = normalize(image)
        item = {"id": image_id, "image": image_t}
        if self.labels is not None:
            item["label"] = torch.from_numpy(self.labels[image_id])
        if saliency is not None:
            item["saliency"] = torch.from_numpy(np.ascontiguousarray(saliency)).float().div_(255.0)[None]
        if mask is not None:
            item["mask"] = torch.from_numpy(np.ascontiguousarray(mask)).long()
        return item
