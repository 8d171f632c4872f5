"""Stage train_classifier: a localization classifier (wsss.methods: cam, the baseline, and eps, Lee
et al., CVPR 2021) trained on train_aug. Its registry record gives its loss, its own settings and
whether it reads saliency maps; wsss.config.settings.classifier_training gives the rest.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass

import torch

from wsss.core.distributed import is_main_process
from wsss.core.io import BadInputError, read_id_list
from wsss.core.model_files import discard_checkpoint, save_model
from wsss.core.schema import from_section, schema_defaults
from wsss.core.train_loop import LoopConfig, TrainingRecipe, files_fingerprint, poly_scheduler, train
from wsss.data.datasets import TrainTransform, WSSSDataset, read_labels_csv
from wsss.methods import Classifier, resolve
from wsss.models.classifier import ModelConfig, build_classifier

log = logging.getLogger(__name__)


@dataclass
@schema_defaults("classifier.train")
class ClassifierRecipe(TrainingRecipe):
    head_lr_mult: float  # the new 1x1 head learns this many times faster (10x in the paper)
    bias_lr_mult: float  # conv biases (PSA/EPS: 2x, no decay)
    bias_weight_decay: bool
    resize_mode: str  # long-side resize of image and saliency: bicubic (official) | bilinear
    hue_jitter: float  # max hue shift as a fraction of the hue circle (official 0.1)
    crop_size: int
    scale_range: list[int] | None  # random long side, px (None: no resize)
    flip: bool
    color_jitter: float
    channels_last: bool
    decay_iterations: int | None  # poly-decay horizon (None: iterations); the lr holds its last value after it


def _log_selection_rates(loss_csv, class_names: list[str]) -> dict[str, float]:
    """Mean foreground-selection rate per class over the last quarter of training, logged."""
    import pandas as pd

    try:
        df = pd.read_csv(loss_csv)
    except (FileNotFoundError, pd.errors.EmptyDataError):
        return {}
    tail = df.iloc[len(df) * 3 // 4:]
    rates = {n: float(tail[f"fg_{n}"].mean()) for n in class_names if f"fg_{n}" in tail}
    if rates:
        log.info("foreground-selection rate per class (last quarter of training): %s",
                 ", ".join(f"{n} {r:.2f}" for n, r in rates.items()))
        stuck = [n for n, r in rates.items() if r < 0.05]
        if stuck:
            log.warning("classes %s are almost never selected as foreground: they collapsed onto the "
                        "background (their softmax maps never exceed 0.5 on the salient region); train "
                        "longer, from ImageNet weights, or see classifier.tau in config/README.md", stuck)
    return rates


def train_classifier(classifier: Classifier, images_dir: str | os.PathLike, labels_csv: str | os.PathLike,
                     ids_file: str | os.PathLike, model_out: str | os.PathLike, training: dict,
                     saliency_dir: str | os.PathLike | None = None, checkpoint: str | os.PathLike | None = None,
                     loss_csv: str | os.PathLike | None = None, seed: int = 0, device: str = "auto") -> dict:
    """Train `classifier` on the ids of `ids_file`; write `model_out`.

    `training` is wsss.config.settings.classifier_training's {"model", "train", "own"}. Returns the
    per-class foreground-selection rates (when the loss logs them) for the caller's log.
    """
    if classifier.trains_on_saliency and saliency_dir is None:
        raise BadInputError(f"the {classifier.name} classifier needs saliency maps: give saliency_dir "
                            "(results/saliency/maps)")
    model_cfg = from_section(ModelConfig, training["model"])
    recipe = from_section(ClassifierRecipe, training["train"])
    own = dict(training["own"])
    settings = from_section(classifier.settings, own) if classifier.settings else None
    class_names, _ = read_labels_csv(labels_csv)
    ids = read_id_list(ids_file)
    transform = TrainTransform(recipe.crop_size, tuple(recipe.scale_range) if recipe.scale_range else None,
                               recipe.flip, recipe.color_jitter, resize_mode=recipe.resize_mode,
                               hue_jitter=recipe.hue_jitter)
    sal_dir = saliency_dir if classifier.trains_on_saliency else None
    dataset = WSSSDataset(ids, images_dir, labels_csv, sal_dir, transform=transform)
    torch.manual_seed(seed)  # model initialisation is part of the deterministic run
    model = build_classifier(classifier, len(class_names), **dataclasses.asdict(model_cfg),
                             head_dropout=own.get("head_dropout", 0.0))
    # momentum: the official PolyOptimizer passes its weight decay into SGD's momentum slot, so
    # the paper's recipe runs with momentum 5e-4 (classifier.train.momentum's default).
    optimizer = torch.optim.SGD(model.param_groups(recipe.lr, recipe.weight_decay, recipe.head_lr_mult,
                                                   recipe.bias_lr_mult, recipe.bias_weight_decay),
                                lr=recipe.lr, momentum=recipe.momentum)
    scheduler = poly_scheduler(optimizer, recipe.iterations, recipe.poly_power, recipe.decay_iterations)
    run_config = {"classifier": classifier.name, "class_names": class_names, "model": dataclasses.asdict(model_cfg),
                  "own": own, "train": dataclasses.asdict(recipe), "seed": seed, "num_train_ids": len(ids),
                  # Changed images, labels or saliency maps make Snakemake rerun this job: never
                  # resume a checkpoint trained on the old ones.
                  "data_sha1": files_fingerprint(
                      [labels_csv] + [f"{images_dir}/{i}.jpg" for i in ids]
                      + ([f"{sal_dir}/{i}.png" for i in ids] if sal_dir else []))}
    step = resolve(classifier.loss)(len(class_names), settings, class_names)
    log.info("training %s classifier (%s backbone) on %d images for %d iterations", classifier.name,
             model_cfg.backbone, len(ids), recipe.iterations)
    model = train(model, optimizer, scheduler, dataset, step, LoopConfig.from_recipe(recipe, seed, device),
                  checkpoint, loss_csv, run_config)
    if is_main_process():
        save_model(model_out, model, run_config)
        discard_checkpoint(checkpoint)  # a forced rerun must retrain, not "resume" at the end
    return _log_selection_rates(loss_csv, class_names) if loss_csv else {}
