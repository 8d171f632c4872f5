"""Bytes per image of every intermediate of a coco14 run at COCO image size, and the run's total.

    python -m wsss_dev.bench.footprint --images 12 --out results/bench/coco_footprint.csv

Content: wsss_dev.bench.coco's synthetic 640x480 split, converted by the coco14 source. Localization
maps as the paper setting stores them (pseudo_masks.eps_rule official): the cam classifier's by
multiscale_maps, the eps classifier's by the official protocol (official_maps, peak-normalised),
scales 0.5/1/1.5/2 + flip, written by save_maps; the argmax rule's eps file (maps + softmax) is
measured too. The classifier is a stand-in that scores each class by colour similarity at output
stride 8 (EPS's ResNet-38): `smooth` is a trained-like map; `noisy` adds feature-level noise as
large as the signal, an upper bracket. Pseudo-masks by the methods' own rules, CRF by wsss.stages.crf
with the paper's parameters.
Compact alternatives of the map files are measured with the pseudo-mask they give: uint8 maps
(each class divided by its peak, the peak kept) and float16 maps at a quarter of the resolution,
upsampled again on reading.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from wsss.core.images import IMAGENET_MEAN, IMAGENET_STD, normalize
from wsss.core.io import atomic_path, load_maps, read_image, read_label_png, save_maps, write_gray_png, write_label_png
from wsss.data.sources.coco14 import prepare as coco14
from wsss.methods.cam import threshold_mask
from wsss.methods.eps_official import NORM_EPSILON, OFFICIAL_SCALES, OFFICIAL_THRESHOLD, official_maps
from wsss.stages.crf import crf_config, refine_label
from wsss.stages.infer_cams import CamInferConfig, multiscale_maps
from wsss_dev.bench.coco import NUM_CLASSES, _palette, write_synthetic_split

TRAIN, VAL = 82_081, 40_137  # the authors' lists: a coco14 run's train (= train_aug) and val images
BLOCK = 4096  # ext4/xfs allocation unit: a 1 KB file still takes 4 KB of disk
# Files of a default coco14 run (methods cam, cam_sal, eps; DeepLab on cam, eps, gt; evaluation.pseudo_mask_split
# train, which on COCO is all of train_aug), by intermediate: (files, which measurement stands for them).
RUN = [
    ("prepared label PNG", TRAIN + VAL, "gt_png"),
    ("saliency PNG (train_aug)", TRAIN, "saliency_png"),
    ("maps .npz, cam classifier", TRAIN, "{v}_cam_{layout}"),
    ("maps .npz, eps classifier", TRAIN, "{v}_eps_{layout}"),
    ("pseudo-mask PNG, cam + cam_sal", 2 * TRAIN, "{v}_cam_pseudo_png"),
    ("pseudo-mask PNG, eps", TRAIN, "{v}_eps_pseudo_png"),
    ("CRF pseudo-mask PNG, cam + cam_sal", 2 * TRAIN, "cam_crf_png"),
    ("CRF pseudo-mask PNG, eps", TRAIN, "eps_crf_png"),
    ("DeepLab pred PNG (cam, eps, gt)", 3 * VAL, "{v}_eps_pseudo_png"),
    ("DeepLab pred_crf PNG (cam, eps, gt)", 3 * VAL, "eps_crf_png"),
]


class ColourClassifier(torch.nn.Module):
    """Stand-in classifier (`method` cam or eps, as LocalizationClassifier): class logits from
    colour similarity at output stride 8; eps adds a background map (last)."""

    def __init__(self, palette: np.ndarray, method: str, noise: float, seed: int = 0):
        super().__init__()
        self.method, self.num_classes, self.noise = method, NUM_CLASSES, noise
        self.background_map = method == "eps"
        self.palette = torch.from_numpy(palette)[None, :, :, None, None]
        self.gen = torch.Generator().manual_seed(seed)
        self.device_anchor = torch.nn.Parameter(torch.zeros(1), requires_grad=False)  # official_maps asks

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        rgb = F.avg_pool2d((x * std + mean) * 255.0, 8, 8, ceil_mode=True)
        score = torch.exp(-((rgb[:, None] - self.palette) ** 2).sum(2) / (2 * 40.0 ** 2))
        logits = F.avg_pool2d(8.0 * score - 4.0, 3, 1, 1, count_include_pad=False)  # a receptive field
        if self.noise:
            logits = logits + self.noise * torch.randn(logits.shape, generator=self.gen)
        if self.background_map:
            logits = torch.cat([logits, torch.zeros_like(logits[:, :1])], 1)
        return logits


def _size(path: Path) -> int:
    return path.stat().st_size


def _quarter(maps: np.ndarray) -> np.ndarray:
    return F.avg_pool2d(torch.from_numpy(maps)[None], 4, 4, ceil_mode=True)[0].numpy()


def _upsample(maps: np.ndarray, shape) -> np.ndarray:
    return F.interpolate(torch.from_numpy(maps)[None], size=shape, mode="bilinear", align_corners=False)[0].numpy()


def _save_uint8(path: Path, classes: np.ndarray, maps: np.ndarray) -> np.ndarray:
    """uint8 maps (each class / its peak x 255) + the peaks; returns the maps as they read back."""
    peak = maps.reshape(len(maps), -1).max(axis=1).astype(np.float32)
    q = np.rint(maps / np.maximum(peak, 1e-5)[:, None, None] * 255.0).astype(np.uint8)
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, classes=classes.astype(np.int16), maps=q, peak=peak)
    return q.astype(np.float32) / 255.0 * peak[:, None, None]


def measure(images: int = 12, workdir: str | Path | None = None) -> pd.DataFrame:
    """One row per image: bytes (apparent size) of each file kind, and how often a compact map
    layout gives the same pseudo-mask pixel as the float16 maps."""
    rows = []
    crf = crf_config({})
    palette = _palette(NUM_CLASSES)
    infer = CamInferConfig(scales=list(OFFICIAL_SCALES), flip=True, num_workers=0, amp=False)
    with tempfile.TemporaryDirectory(prefix="bench_footprint.", dir=workdir) as tmp:
        tmp = Path(tmp)
        split = coco14.load_split(write_synthetic_split(tmp / "raw", images, seed=1), tmp / "raw" / "train2014")
        ids = split.annotated_ids()
        assert not coco14.write_masks(split, ids, tmp / "gt")
        for image_id in ids:
            gt = read_label_png(tmp / "gt" / f"{image_id}.png")
            image = read_image(split.images_dir / split.images[image_id][2])
            present = np.array(sorted(int(v) - 1 for v in np.unique(gt) if 0 < v < 255))
            row = {"id": image_id, "classes": len(present), "gt_png": _size(tmp / "gt" / f"{image_id}.png")}
            fg = torch.from_numpy(((gt > 0) & (gt < 255)).astype(np.float32))[None, None]
            saliency = F.avg_pool2d(fg, 5, 1, 2, count_include_pad=False)[0, 0].numpy()  # PFAN-like soft edges
            write_gray_png(tmp / "sal.png", saliency)
            row["saliency_png"] = _size(tmp / "sal.png")
            for variant, noise in (("smooth", 0.0), ("noisy", 4.0)):
                for method in ("cam", "eps"):  # the paper's setting (eps_rule official): maps only
                    model = ColourClassifier(palette, method, noise)
                    if method == "cam":  # wsss.stages.infer_cams: ReLU maps averaged over the views
                        maps = multiscale_maps(model, normalize(image), list(present), infer)["maps"].numpy()
                        save_maps(tmp / "m.npz", present, maps)
                    else:  # the official protocol: softmax maps summed, each divided by its peak
                        summed = official_maps(model, image, present)
                        maps = summed / (summed.reshape(len(summed), -1).max(axis=1)[:, None, None] + NORM_EPSILON)
                        save_maps(tmp / "m.npz", present, maps, official=np.array(True))
                    key = f"{variant}_{method}"
                    row[f"{key}_npz"] = _size(tmp / "m.npz")
                    mask = threshold_mask(present, load_maps(tmp / "m.npz")["maps"], OFFICIAL_THRESHOLD)
                    write_label_png(tmp / "p.png", mask)
                    row[f"{key}_pseudo_png"] = _size(tmp / "p.png")
                    back = _save_uint8(tmp / "u.npz", present, maps)
                    row[f"{key}_uint8_npz"] = _size(tmp / "u.npz")
                    row[f"{key}_uint8_same_mask"] = float((threshold_mask(present, back, OFFICIAL_THRESHOLD)
                                                           == mask).mean())
                    save_maps(tmp / "q.npz", present, _quarter(maps), official=np.array(True))
                    row[f"{key}_quarter_npz"] = _size(tmp / "q.npz")
                    up = _upsample(load_maps(tmp / "q.npz")["maps"], maps.shape[1:])
                    row[f"{key}_quarter_same_mask"] = float((threshold_mask(present, up, OFFICIAL_THRESHOLD)
                                                             == mask).mean())
                    if variant == "smooth":
                        write_label_png(tmp / "c.png", refine_label(image, mask, list(present + 1), crf))
                        row[f"{method}_crf_png"] = _size(tmp / "c.png")
                # pseudo_masks.eps_rule argmax stores the maps and the softmax of the wsss.stages.infer_cams protocol
                out = multiscale_maps(ColourClassifier(palette, "eps", noise), normalize(image), list(present), infer)
                save_maps(tmp / "a.npz", present, out["maps"].numpy(), probs=out["probs"].numpy())
                row[f"{variant}_eps_argmax_npz"] = _size(tmp / "a.npz")
            rows.append(row)
    return pd.DataFrame(rows)


def _allocated(sizes: pd.Series) -> float:
    return float(np.mean([math.ceil(s / BLOCK) * BLOCK for s in sizes]))


def project(per_image: pd.DataFrame, variant: str = "smooth", layout: str = "npz") -> pd.DataFrame:
    """The run's intermediates (maps in `layout`: npz = float16 today, uint8_npz, quarter_npz): files x
    mean bytes, apparent and allocated, in GB (10^9)."""
    rows = []
    for what, files, key in RUN:
        key = key.format(v=variant, layout=layout)
        col = per_image[key]
        rows.append({"intermediate": what, "files": files, "measured_as": key,
                     "bytes_per_file": round(float(col.mean())), "allocated_per_file": round(_allocated(col)),
                     "total_gb": round(files * float(col.mean()) / 1e9, 2),
                     "allocated_gb": round(files * _allocated(col) / 1e9, 2)})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m wsss_dev.bench.footprint", description=__doc__)
    ap.add_argument("--images", type=int, default=12)
    ap.add_argument("--out", required=True, help="CSV of the per-image measurements; <out>.projection.csv beside")
    args = ap.parse_args(argv)
    per_image = measure(args.images)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        per_image.to_csv(tmp, index=False)
    print(per_image.drop(columns=["id"]).mean().round(4).to_string())
    totals = []
    for variant in ("smooth", "noisy"):
        for layout in ("npz", "uint8_npz", "quarter_npz"):
            table = project(per_image, variant, layout)
            totals.append({"maps": variant, "layout": layout, "total_gb": round(table["total_gb"].sum(), 1),
                           "allocated_gb": round(table["allocated_gb"].sum(), 1)})
            with atomic_path(out.with_suffix(f".{variant}_{layout}.csv")) as tmp:
                table.to_csv(tmp, index=False)
            if (variant, layout) == ("smooth", "npz"):
                print(table.to_string(index=False))
    print(pd.DataFrame(totals).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
