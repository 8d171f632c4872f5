"""Multi-scale + flip localization maps of a trained classifier, one `.npz` per image id.

Each file (`wsss.core.io.save_maps`) holds, at image size and for the image's present classes only:
- `classes` (K,) 0-based class indices, `maps` (K, H, W): ReLU CAMs averaged over scales and
  flips (for eps: ReLU of its class maps, comparable to CAMs);
- eps only, `probs` (K+1, H, W): softmax over the present classes' maps plus the background map
  (last), averaged over scales and flips. The eps pseudo-mask is its argmax; reading the raw
  class maps instead loses most of the gain (47 vs 79 mIoU in the project's prototype).
The average (not the sum) keeps values in float16 range whatever the number of scales.
`map_dtype` uint8 stores `maps` per class as a fraction of its peak (wsss.core.io.save_maps): the
footprint that keeps a COCO run's map files within its budget (docs/experiments.md).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from wsss.core.device import place_model, resolve_device
from wsss.core.io import atomic_dir, read_id_list, save_maps
from wsss.core.schema import from_section, schema_defaults
from wsss.core.sharding import shard_ids
from wsss.data.datasets import WSSSDataset
from wsss.models.classifier import load_classifier

log = logging.getLogger(__name__)


@dataclass
@schema_defaults("classifier.infer")
class CamInferConfig:
    scales: list[float]
    flip: bool
    num_workers: int  # DataLoader workers decoding images
    amp: bool  # float16 autocast on CUDA
    map_dtype: str  # how `maps` is stored: float16 | uint8 (peak-normalised, peak kept)
    official: bool = False  # the official infer.py protocol (pseudo_masks.eps_rule official), eps only


def multiscale_maps(model, image: torch.Tensor, present: list[int], cfg: CamInferConfig,
                    use_amp: bool = False) -> dict[str, torch.Tensor]:
    """One image (3, H, W) on the model's device → {'maps': (K, H, W)[, 'probs': (K+1, H, W)]}."""
    h, w = image.shape[-2:]
    c = model.num_classes
    eps = model.background_map  # its softmax over present classes + background is stored too
    keep = torch.tensor(present + ([c] if eps else []), dtype=torch.long, device=image.device)
    maps_sum = torch.zeros(len(present), h, w, device=image.device)
    probs_sum = torch.zeros(len(present) + 1, h, w, device=image.device) if eps else None
    n = 0
    # no_grad as a block, not a decorator: `make mutation` (mutmut) leaves decorated functions unmutated
    with torch.no_grad():
        for s in cfg.scales:
            size = (max(1, round(h * s)), max(1, round(w * s)))
            x = F.interpolate(image[None], size=size, mode="bilinear", align_corners=False) if s != 1 else image[None]
            if cfg.flip:
                x = torch.cat([x, x.flip(-1)])
            with torch.autocast(device_type="cuda", dtype=torch.float16, enabled=use_amp):
                out = model(x)
            out = out.float()
            if cfg.flip:
                out = torch.stack([out[0], out[1].flip(-1)])
            # Upsample the raw maps (not their softmax) so class boundaries stay sharp at image size.
            out = F.interpolate(out[:, keep], size=(h, w), mode="bilinear", align_corners=False)
            maps_sum += F.relu(out[:, : len(present)]).sum(0)
            if eps:
                probs_sum += torch.softmax(out, dim=1).sum(0)
            n += out.shape[0]
    result = {"maps": maps_sum / n}
    if eps:
        result["probs"] = probs_sum / n
    return result


def save_official(path: Path, model, image_path: Path, present: list[int], cfg: CamInferConfig) -> None:
    """The official protocol's maps of one image, divided by their per-class max (+1e-5) as the
    official code does, stored with an `official` flag (in cfg.map_dtype, like every map file)."""
    from wsss.core.io import read_image
    from wsss.methods.eps_official import NORM_EPSILON, official_maps

    summed = official_maps(model, read_image(image_path), present, cfg.scales, cfg.flip)
    peak = summed.reshape(len(summed), -1).max(axis=1) if len(summed) else np.zeros(0)
    save_maps(path, np.array(present), summed / (peak[:, None, None] + NORM_EPSILON), cfg.map_dtype,
              official=np.array(True))


def infer_cams(model_path: str | os.PathLike, images_dir: str | os.PathLike, labels_csv: str | os.PathLike,
               ids_file: str | os.PathLike, out_dir: str | os.PathLike, cfg: CamInferConfig | dict,
               shard: int = 0, num_shards: int = 1, device: str = "auto") -> int:
    """Write `<out_dir>/<id>.npz` for this shard's ids of `ids_file` (atomically, as one folder).

    Returns the number of images written. Output for an image does not depend on the shards.
    """
    if isinstance(cfg, dict):
        cfg = from_section(CamInferConfig, cfg)
    dev = resolve_device(device)
    model, run_config = load_classifier(model_path)
    place_model(model, dev)
    use_amp = cfg.amp and dev.type == "cuda"
    ids = shard_ids(read_id_list(ids_file), shard, num_shards)
    dataset = WSSSDataset(ids, images_dir, labels_csv)
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=cfg.num_workers,
                                         pin_memory=dev.type == "cuda")
    from tqdm import tqdm

    log.info("%s maps for %d images (shard %d/%d), scales %s, flip %s", model.name, len(ids), shard,
             num_shards, cfg.scales, cfg.flip)
    with atomic_dir(out_dir) as tmp:
        for item in tqdm(loader, total=len(ids), desc="cams", mininterval=2.0):
            present = torch.nonzero(item["label"] > 0.5).flatten().tolist()
            image = item["image"].to(dev, non_blocking=True)
            if cfg.official:
                save_official(Path(tmp) / f"{item['id']}.npz", model, Path(images_dir) / f"{item['id']}.jpg",
                              present, cfg)
                continue
            out = multiscale_maps(model, image, present, cfg, use_amp)
            extra = {"probs": out["probs"].cpu().numpy()} if "probs" in out else {}
            save_maps(Path(tmp) / f"{item['id']}.npz", np.array(present), out["maps"].cpu().numpy(), cfg.map_dtype,
                      **extra)
    return len(ids)
