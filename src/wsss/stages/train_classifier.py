"""Training of the localization classifiers (wsss.methods: cam, the baseline, and eps, Lee et al.,
CVPR 2021). The classifier's registry record gives its loss and whether it reads saliency maps.

The `classifier` config section holds the recipe: the paper's values are the schema's defaults.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass

import torch

from wsss import methods
from wsss.data.datasets import TrainTransform, WSSSDataset, read_labels_csv
from wsss.core.distributed import is_main_process
from wsss.core.io import BadInputError, read_id_list
from wsss.models.classifier import LocalizationClassifier, build_classifier
from wsss.config.schema import JOB_KEYS, from_section, schema_defaults
from wsss.core.train_loop import LoopConfig, TrainingRecipe, files_fingerprint, poly_scheduler, train
from wsss.core.model_files import discard_checkpoint, load_model, save_model

log = logging.getLogger("wsss.classifier")


@dataclass
@schema_defaults("classifier")
class ModelConfig:
    """Network shape: enough to rebuild the model from a saved file."""

    backbone: str  # small | resnet50 | resnet101 | resnet38d
    width: int  # channels of the small CNN's first layer
    pretrained: str | None  # ImageNet weights: file path or torchvision enum name
    freeze_bn: bool  # every BN in eval mode, affine fixed (the official recipe)
    frozen_blocks: list[str]  # backbone blocks never trained (official: conv1a, b2, b2_1, b2_2)
    head_init: str  # xavier (official fc8) | normal (std 0.01)


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


# Keys of the `classifier` section that are not the model's, not the recipe's and not a
# classifier's own (wsss.methods): inference settings of infer_cams, the files import_classifier reads.
_INFER_KEYS = ("infer", "checkpoint")


def split_section(section: dict, classifier: str) -> tuple[ModelConfig, ClassifierRecipe, dict]:
    """The `classifier` config section → (model, recipe, this classifier's own keys)."""
    own = methods.classifier(classifier).own_keys
    others = {k for c in methods.CLASSIFIERS.values() for k in c.own_keys} - set(own)
    model = from_section(ModelConfig, section, ignore=("train", *_INFER_KEYS, *own, *others))
    recipe = from_section(ClassifierRecipe, section.get("train", {}), ignore=JOB_KEYS)
    return model, recipe, {k: section[k] for k in own if k in section}


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


def train_classifier(method: str, images_dir: str | os.PathLike, labels_csv: str | os.PathLike,
                     ids_file: str | os.PathLike, model_out: str | os.PathLike, section: dict,
                     saliency_dir: str | os.PathLike | None = None, checkpoint: str | os.PathLike | None = None,
                     loss_csv: str | os.PathLike | None = None, seed: int = 0, device: str = "auto") -> dict:
    """Train the classifier `method` (a wsss.methods classifier) on the ids of `ids_file`; write `model_out`.

    `section` is the `classifier` config section. Returns the per-class foreground-selection
    rates (when the loss logs them) for the caller's log.
    """
    record = methods.classifier(method)
    if record.trains_on_saliency and saliency_dir is None:
        raise BadInputError(f"the {method} classifier needs saliency maps: give saliency_dir (results/saliency/maps)")
    model_cfg, recipe, own = split_section(section, method)
    class_names, _ = read_labels_csv(labels_csv)
    ids = read_id_list(ids_file)
    transform = TrainTransform(recipe.crop_size, tuple(recipe.scale_range) if recipe.scale_range else None,
                               recipe.flip, recipe.color_jitter, resize_mode=recipe.resize_mode,
                               hue_jitter=recipe.hue_jitter)
    sal_dir = saliency_dir if record.trains_on_saliency else None
    dataset = WSSSDataset(ids, images_dir, labels_csv, sal_dir, transform=transform)
    torch.manual_seed(seed)  # model initialisation is part of the deterministic run
    model = build_classifier(method, len(class_names), **dataclasses.asdict(model_cfg),
                             head_dropout=own.get("head_dropout", 0.0))
    # momentum: the official PolyOptimizer passes its weight decay into SGD's momentum slot, so
    # the paper's recipe runs with momentum 5e-4 (classifier.train.momentum's default).
    optimizer = torch.optim.SGD(model.param_groups(recipe.lr, recipe.weight_decay, recipe.head_lr_mult,
                                                   recipe.bias_lr_mult, recipe.bias_weight_decay),
                                lr=recipe.lr, momentum=recipe.momentum)
    scheduler = poly_scheduler(optimizer, recipe.iterations, recipe.poly_power)
    run_config = {"method": method, "class_names": class_names, "model": dataclasses.asdict(model_cfg),
                  "own": own, "train": dataclasses.asdict(recipe), "seed": seed, "num_train_ids": len(ids),
                  # Changed images, labels or saliency maps make Snakemake rerun this job: never
                  # resume a checkpoint trained on the old ones.
                  "data_sha1": files_fingerprint(
                      [labels_csv] + [f"{images_dir}/{i}.jpg" for i in ids]
                      + ([f"{sal_dir}/{i}.png" for i in ids] if sal_dir else []))}
    step = methods.resolve(record.loss)(len(class_names), own, class_names)
    log.info("training %s classifier (%s backbone) on %d images for %d iterations", method,
             model_cfg.backbone, len(ids), recipe.iterations)
    model = train(model, optimizer, scheduler, dataset, step, LoopConfig.from_recipe(recipe, seed, device),
                  checkpoint, loss_csv, run_config)
    if is_main_process():
        save_model(model_out, model, run_config)
        discard_checkpoint(checkpoint)  # a forced rerun must retrain, not "resume" at the end
    return _log_selection_rates(loss_csv, class_names) if loss_csv else {}


def load_classifier(path: str | os.PathLike) -> tuple[LocalizationClassifier, dict]:
    """Rebuild a trained classifier from its model file (no pretrained weights are fetched)."""
    obj = load_model(path)
    cfg = obj["config"]
    try:
        m = {**cfg["model"], "pretrained": None}  # the trained weights follow: fetch nothing
        model = build_classifier(cfg["method"], len(cfg["class_names"]), **m)
        model.load_state_dict(obj["model"])
    except (KeyError, RuntimeError, ValueError) as err:
        raise BadInputError(f"{path}: not a classifier model file ({err}); re-run train_classifier") from err
    return model.eval(), cfg
