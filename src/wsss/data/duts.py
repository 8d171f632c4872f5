"""Saliency training data in the DUTS layout: `<root>/DUTS-TR-Image/<id>.jpg`, `<root>/DUTS-TR-Mask/<id>.png`.

The real DUTS-TR and the synthetic benchmark's saliency set share this layout. A held-out split
(for MAE / max-F evaluation) is a seeded function of the sorted id list, so training and evaluation
agree on it without writing a list file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from wsss.core.images import normalize
from wsss.core.io import BadInputError, read_gray_png, read_image
from wsss.data.layout import DUTS

IMAGE_DIR, MASK_DIR = DUTS["images"], DUTS["masks"]  # the DUTS layout (wsss.data.layout)


def list_duts(root: str | Path) -> list[str]:
    """Sorted ids of a DUTS-layout folder; every image must have its mask."""
    root = Path(root)
    img_dir, mask_dir = root / IMAGE_DIR, root / MASK_DIR
    if not img_dir.is_dir() or not mask_dir.is_dir():
        raise BadInputError(f"{root}: not a DUTS-layout folder (needs {IMAGE_DIR}/ and {MASK_DIR}/); "
                            "re-run synthesize_dataset / download_duts or fix the saliency source")
    ids = sorted(p.stem for p in img_dir.glob("*.jpg"))
    if not ids:
        raise BadInputError(f"{img_dir}: no .jpg images; re-run the rule that produces the saliency set")
    masks = {p.stem for p in mask_dir.glob("*.png")}
    missing = [i for i in ids if i not in masks]
    if missing:
        raise BadInputError(f"{mask_dir / (missing[0] + '.png')}: mask missing for image {missing[0]} "
                            f"({len(missing)} masks missing in all); re-extract the saliency set")
    return ids


def split_duts(ids: list[str], holdout: float, seed: int) -> tuple[list[str], list[str]]:
    """(train ids, held-out ids): a seeded permutation of the sorted ids; at least one of each."""
    ids = sorted(ids)
    if len(ids) < 2:
        raise BadInputError(f"saliency set has {len(ids)} image(s); need at least 2 for a held-out split")
    n_hold = min(len(ids) - 1, max(1, int(round(len(ids) * holdout))))
    order = np.random.default_rng(seed).permutation(len(ids))
    held = sorted(ids[i] for i in order[:n_hold])
    train = sorted(ids[i] for i in order[n_hold:])
    return train, held


def resize_image(image: np.ndarray, size: int) -> np.ndarray:
    if image.shape[:2] == (size, size):
        return image
    return np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))


@dataclass
class SaliencyAugment:
    flip: bool = True              # random horizontal flip
    min_crop: float = 0.75         # random crop side in [min_crop, 1] of each side, then resize
    color_jitter: float = 0.1      # brightness/contrast factor range +-color_jitter (image only)
    # Square crop (px) taken from the resized sample, at its scale; None = the whole sample. Fully
    # convolutional PFAN infers on the whole image; training on crops cuts the cost per step.
    crop_size: int | None = None


class DUTSDataset:
    """Images and masks resized to `size` x `size`; `dataset[(index, seed)]` augments from the seed.

    Items: `id`, `image` (3, S, S) float32 normalised, `mask` (1, S, S) float32 in [0, 1].
    """

    def __init__(self, root: str | Path, ids: list[str], size: int, augment: SaliencyAugment | None = None):
        self.root, self.ids, self.size, self.augment = Path(root), list(ids), int(size), augment

    def __len__(self) -> int:
        return len(self.ids)

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        sid = self.ids[i]
        image = read_image(self.root / IMAGE_DIR / f"{sid}.jpg")
        mask = read_gray_png(self.root / MASK_DIR / f"{sid}.png")
        if mask.shape != image.shape[:2]:
            raise BadInputError(f"{self.root / MASK_DIR / (sid + '.png')}: mask is {mask.shape[1]}x{mask.shape[0]}"
                                f" but its image is {image.shape[1]}x{image.shape[0]}; fix or remove the pair")
        return image, mask

    def __getitem__(self, key) -> dict:
        index, seed = key if isinstance(key, tuple) else (key, None)
        image, mask = self.load(index)
        augment = self.augment is not None and seed is not None
        rng = np.random.default_rng(seed) if augment else None
        if augment:
            image, mask = self._augment(image, mask, rng)
        image = resize_image(image, self.size)
        mask_img = Image.fromarray(mask.astype(np.float32), mode="F")
        if mask.shape != (self.size, self.size):
            mask_img = mask_img.resize((self.size, self.size), Image.BILINEAR)
        mask = np.clip(np.asarray(mask_img, dtype=np.float32), 0, 1)
        crop = self.augment.crop_size if augment else None
        if crop and crop < self.size:
            y0, x0 = (int(v) for v in rng.integers(0, self.size - crop + 1, size=2))
            image, mask = image[y0:y0 + crop, x0:x0 + crop], mask[y0:y0 + crop, x0:x0 + crop]
        return {"id": self.ids[index], "image": normalize(np.ascontiguousarray(image)),
                "mask": torch.from_numpy(np.ascontiguousarray(mask))[None]}

    def _augment(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator):
        aug = self.augment
        h, w = mask.shape
        ch = max(1, int(round(h * rng.uniform(aug.min_crop, 1.0))))
        cw = max(1, int(round(w * rng.uniform(aug.min_crop, 1.0))))
        y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        image, mask = image[y0:y0 + ch, x0:x0 + cw], mask[y0:y0 + ch, x0:x0 + cw]
        if aug.flip and rng.random() < 0.5:
            image, mask = image[:, ::-1], mask[:, ::-1]
        if aug.color_jitter > 0:
            b = 1 + rng.uniform(-aug.color_jitter, aug.color_jitter)
            c = 1 + rng.uniform(-aug.color_jitter, aug.color_jitter)
            x = image.astype(np.float32) * b
            x = (x - x.mean()) * c + x.mean()
            image = np.clip(np.rint(x), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(image), np.ascontiguousarray(mask)


def download_duts(url: str, out: str | Path, md5: str | None) -> Path:
    """Fetch DUTS-TR.zip with the package's one downloader (`wsss.data.download.download`).

    The DUTS site publishes no checksum. With `md5` set, the file is verified like the VOC
    archives; with None it is trusted on first use and its MD5 is logged so it can be pinned
    in the config (saliency.duts_md5; a later mismatch then stops the run).
    """
    from wsss.data.download import download

    return download(url, out, md5 or None)


def extract_duts(archive: str | Path, out_dir: str | Path) -> int:
    """Extract the `DUTS-TR/` folder of DUTS-TR.zip onto `out_dir` atomically; returns image count."""
    import shutil
    import zipfile

    from wsss.core.io import atomic_dir

    archive = Path(archive)
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, FileNotFoundError) as err:
        raise BadInputError(f"{archive}: not a readable zip ({err}); delete it and rerun download_duts") from err
    with zf, atomic_dir(out_dir) as tmp:
        members = [m for m in zf.namelist() if m.split("/")[0] == "DUTS-TR"]
        if not members:
            raise BadInputError(f"{archive}: no top-level DUTS-TR/ folder; is it DUTS-TR.zip? Delete it and rerun")
        for name in members:
            parts = Path(name).parts
            if name.startswith("/") or ".." in parts:  # never write outside the target folder
                raise BadInputError(f"{archive}: unsafe member path {name!r}; refusing to extract")
            if name.endswith("/") or len(parts) < 2:
                continue
            dest = tmp.joinpath(*parts[1:])
            dest.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(name) as src, open(dest, "wb") as dst:
                shutil.copyfileobj(src, dst)
    return len(list_duts(out_dir))
