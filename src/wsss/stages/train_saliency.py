"""Train PFAN on a DUTS-layout saliency set (the held-out split is left out for evaluation)."""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from wsss.core.distributed import is_main_process
from wsss.core.model_files import discard_checkpoint, save_model
from wsss.core.schema import from_section, schema_defaults
from wsss.core.train_loop import LoopConfig, TrainingRecipe, files_fingerprint, poly_scheduler, train
from wsss.data.duts import IMAGE_DIR, MASK_DIR, DUTSDataset, SaliencyAugment, list_duts, split_duts
from wsss.models.pfan import PFANConfig, PFANLossConfig, build_pfan, pfan_loss

log = logging.getLogger(__name__)


@dataclass
@schema_defaults("saliency.train")
class SaliencyTrainConfig(TrainingRecipe):
    optimizer: str                   # adam (fast from scratch) | sgd (momentum)
    min_crop: float                  # augmentation: random crop side fraction in [min_crop, 1]
    crop_size: int | None            # then a square crop (px) of the input_size sample; None = whole
    flip: bool
    color_jitter: float
    pos_weight: float                # PFAN loss: weight of the positive BCE term
    edge_alpha: float                # PFAN loss: alpha * BCE + (1 - alpha) * edge BCE


def make_optimizer(model: torch.nn.Module, cfg: SaliencyTrainConfig) -> torch.optim.Optimizer:
    # No weight decay on BN parameters and biases (1-D tensors): decaying them only hurts.
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    raise ValueError(f"saliency.train.optimizer must be adam or sgd, got {cfg.optimizer!r}")


def train_saliency(duts_dir: str | os.PathLike, model_out: str | os.PathLike, *, model: dict, train_cfg: dict,
                   holdout: float, seed: int, device: str = "auto", checkpoint: str | os.PathLike | None = None,
                   loss_csv: str | os.PathLike | None = None) -> None:
    """Train PFAN on the non-held-out part of `duts_dir`; write `model_out` ({"model", "config"}).

    `model` holds PFANConfig fields plus `input_size`; `train_cfg` holds SaliencyTrainConfig fields.
    """
    model = dict(model)
    input_size = int(model.pop("input_size"))
    mcfg, tcfg = from_section(PFANConfig, model), from_section(SaliencyTrainConfig, train_cfg)
    ids = list_duts(duts_dir)
    train_ids, held = split_duts(ids, holdout, seed)
    log.info("PFAN: %d training images, %d held out; input %d px, width %.3g", len(train_ids), len(held),
             input_size, mcfg.width)
    augment = SaliencyAugment(flip=tcfg.flip, min_crop=tcfg.min_crop, color_jitter=tcfg.color_jitter,
                              crop_size=tcfg.crop_size)
    dataset = DUTSDataset(duts_dir, train_ids, input_size, augment)

    torch.manual_seed(seed)  # weight initialisation is part of the run: seed it
    net = build_pfan(mcfg)
    optimizer = make_optimizer(net, tcfg)
    scheduler = poly_scheduler(optimizer, tcfg.iterations, tcfg.poly_power)
    loss_cfg = PFANLossConfig(pos_weight=tcfg.pos_weight, alpha=tcfg.edge_alpha)

    def step(m, batch):
        return pfan_loss(m(batch["image"]), batch["mask"], loss_cfg)

    loop = LoopConfig.from_recipe(tcfg, seed, device)
    run_config = {"model": {**asdict(mcfg), "input_size": input_size}, "train": asdict(tcfg),
                  "holdout": holdout, "seed": seed, "num_train": len(train_ids),
                  # a regenerated saliency set must not resume the old set's checkpoint
                  "data_sha1": files_fingerprint(p for i in train_ids for p in (
                      Path(duts_dir) / IMAGE_DIR / f"{i}.jpg", Path(duts_dir) / MASK_DIR / f"{i}.png"))}
    net = train(net, optimizer, scheduler, dataset, step, loop, checkpoint, loss_csv, run_config)
    if is_main_process():  # under torchrun only rank 0 writes
        save_model(model_out, net, run_config)
        discard_checkpoint(checkpoint)  # a forced rerun must retrain, not "resume" at the end
    log.info("PFAN model written to %s", model_out)
