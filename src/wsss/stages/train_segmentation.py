"""DeepLab training on pseudo-masks (or the ground truth, as an upper bound).

The recipe of DeepLab-v2 / EPS on VOC (config/voc12.yaml): SGD, momentum 0.9, weight decay
5e-4, lr 2.5e-4 with 10x on the head's weights (ASPP, or DeepLab-v1's classifier) and 20x on
its biases (Caffe's lr_mult; those biases also have decay_mult 0, as VGG-16's conv biases, whose
lr_mult is 2), poly decay with power 0.9, batch 10, crop 321, random scale 0.5-1.5 and flip,
pixels labelled 255 ignored. Iterations, checkpoint/resume, AMP, DDP and
the loss CSV are the shared loop's (wsss.core.train_loop).
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from wsss.core.distributed import is_main_process
from wsss.core.io import IGNORE_INDEX, atomic_path, read_id_list
from wsss.core.model_files import discard_checkpoint, save_model
from wsss.core.schema import from_section, schema_defaults
from wsss.core.train_loop import LoopConfig, TrainingRecipe, files_fingerprint, poly_scheduler, train
from wsss.models.deeplab import DeepLabModelConfig, build_deeplab

log = logging.getLogger(__name__)


@dataclass
@schema_defaults("deeplab")
class SegTrainConfig(TrainingRecipe):
    crop_size: int
    scale_range: list[int] | None    # random long side, pixels (None: no rescaling)
    flip: bool
    aspp_weight_lr_mult: float       # Caffe's lr_mult of the head's weights (ASPP, or v1's classifier: 10)
    aspp_bias_lr_mult: float         # ... and biases (20; their decay_mult is 0)
    backbone_bias_lr_mult: float     # ... of the backbone's conv biases (VGG-16's: 2, decay_mult 0; ResNets have none)


def split_config(settings: dict) -> tuple[DeepLabModelConfig, SegTrainConfig]:
    """train_segmentation's settings (wsss.config.settings.deeplab_training, without init_weights)
    → (model config, training config); a key of neither is an error."""
    model_keys = {f.name for f in fields(DeepLabModelConfig)}
    train_keys = {f.name for f in fields(SegTrainConfig)}
    model = from_section(DeepLabModelConfig, {k: v for k, v in settings.items() if k not in train_keys})
    return model, from_section(SegTrainConfig, {k: v for k, v in settings.items() if k not in model_keys})


def build_optimizer(model, cfg: SegTrainConfig) -> torch.optim.SGD:
    groups = model.param_groups()
    param_groups = [
        {"params": groups["backbone"], "lr": cfg.lr},
        {"params": groups["head_weight"], "lr": cfg.lr * cfg.aspp_weight_lr_mult},
        {"params": groups["head_bias"], "lr": cfg.lr * cfg.aspp_bias_lr_mult, "weight_decay": 0.0},
    ]
    if groups["backbone_bias"]:  # a group only where there are such biases: the optimizer state stays as it was
        param_groups.append({"params": groups["backbone_bias"], "lr": cfg.lr * cfg.backbone_bias_lr_mult,
                             "weight_decay": 0.0})
    return torch.optim.SGD(param_groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def segmentation_loss(logits: torch.Tensor | list[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
    """Cross-entropy (255 ignored) of logits upsampled to the mask size, summed over MSC branches."""
    outs = logits if isinstance(logits, list) else [logits]
    if not bool((mask != IGNORE_INDEX).any()):
        # Every pixel ignored (a crop of padding): mean CE would be NaN; contribute zero gradient.
        return sum(o.sum() for o in outs) * 0.0
    total = 0.0
    for o in outs:
        up = F.interpolate(o.float(), size=mask.shape[-2:], mode="bilinear", align_corners=False)
        total = total + F.cross_entropy(up, mask, ignore_index=IGNORE_INDEX)
    return total


def seg_step(model: nn.Module, batch: dict) -> dict[str, torch.Tensor]:
    loss = segmentation_loss(model(batch["image"]), batch["mask"])
    return {"loss": loss}


def masks_fingerprint(ids: list[str], masks_dir: str | os.PathLike) -> str:
    """Fingerprint of the masks DeepLab trains on (a checkpoint made on other pseudo-masks, e.g.
    after a change of the CRF parameters, is then not resumed)."""
    return files_fingerprint(Path(masks_dir) / f"{i}.png" for i in ids)


def train_segmentation(id_list: str | os.PathLike, images_dir: str | os.PathLike, masks_dir: str | os.PathLike,
                       labels_csv: str | os.PathLike, out_model: str | os.PathLike,
                       checkpoint: str | os.PathLike | None, loss_csv: str | os.PathLike | None,
                       deeplab: dict, seed: int = 0, device: str = "auto", threads: int | None = None,
                       loss_out: str | os.PathLike | None = None) -> None:
    """Stage entry (rule train_segmentation): train DeepLab on `masks_dir/<id>.png` for the ids of `id_list`.

    `loss_csv` is the loop's working CSV, kept beside the checkpoint so that it survives a failed
    job and a resumed run continues it; `loss_out` (an output of the rule) gets a copy at the end.
    """
    from wsss.data.datasets import TrainTransform, WSSSDataset, read_labels_csv

    if threads:
        torch.set_num_threads(threads)
    init_weights = deeplab.get("init_weights")
    model_cfg, cfg = split_config({k: v for k, v in deeplab.items() if k != "init_weights"})
    ids = read_id_list(id_list)
    fingerprint = masks_fingerprint(ids, masks_dir)
    class_names, _ = read_labels_csv(labels_csv)
    num_classes = len(class_names) + 1
    transform = TrainTransform(crop_size=cfg.crop_size,
                               scale_range=None if cfg.scale_range is None else tuple(cfg.scale_range),
                               flip=cfg.flip)
    dataset = WSSSDataset(ids, images_dir, mask_dir=masks_dir, transform=transform)
    torch.manual_seed(seed)  # the new layers' initialisation is part of the seeded run
    model = build_deeplab(num_classes, model_cfg, init_weights)
    optimizer = build_optimizer(model, cfg)
    scheduler = poly_scheduler(optimizer, cfg.iterations, cfg.poly_power)
    run_config = {"num_classes": num_classes, "class_names": class_names, "model": asdict(model_cfg),
                  "train": asdict(cfg), "init_weights": init_weights, "seed": seed,
                  "num_images": len(ids), "masks_sha1": fingerprint}
    loop = LoopConfig.from_recipe(cfg, seed, device)
    log.info("DeepLab (%s) on %d images from %s, %d classes, %d iterations", model_cfg.backbone, len(ids),
             masks_dir, num_classes, cfg.iterations)
    model = train(model, optimizer, scheduler, dataset, seg_step, loop, checkpoint, loss_csv, run_config)
    if not is_main_process():  # under DDP only rank 0 writes files
        return
    save_model(out_model, model, run_config)
    if loss_out is not None and loss_csv is not None:
        with atomic_path(loss_out) as tmp:
            shutil.copyfile(loss_csv, tmp)
    # The working CSV lives beside the checkpoint only to survive a failed job; with the model
    # written, both go, so that a forced rerun retrains from step 0 (and does not append to it).
    # Without loss_out the caller reads the working CSV itself: it then stays.
    discard_checkpoint(checkpoint, loss_csv if loss_out is not None else None)
