"""Training of the localization classifier: `cam` (baseline) and `eps` (Lee et al., CVPR 2021).

Recipe (paper, VOC): SGD momentum 0.9, lr 0.01 with poly decay 0.9, weight decay 5e-4, 10× lr
for the new head, batch 8, random long-side resize 256–512, flip, colour jitter, crop 448,
20k iterations; EPS τ 0.4, λ 0.5. The `classifier` config section holds all of it.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from dataclasses import dataclass, field

import torch

from wsss.data.datasets import TrainTransform, WSSSDataset, read_labels_csv
from wsss.io import BadInputError, read_id_list
from wsss.losses import classification_loss, eps_loss, select_maps
from wsss.models.classifier import LocalizationClassifier, build_classifier
from wsss.train.loop import LoopConfig, files_fingerprint, load_model, poly_scheduler, save_model, train

log = logging.getLogger("wsss.classifier")


@dataclass
class ModelConfig:
    """Network shape: enough to rebuild the model from a saved file."""

    backbone: str = "small"           # small | resnet50 | resnet101 | resnet38d
    width: int = 32                   # channels of the small CNN's first layer
    pretrained: str | None = None     # ImageNet weights: file path or torchvision enum name


@dataclass
class TrainRecipe:
    iterations: int = 20000
    batch_size: int = 8
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    head_lr_mult: float = 10.0
    poly_power: float = 0.9
    crop_size: int = 448
    scale_range: list[int] | None = field(default_factory=lambda: [256, 512])  # long side, px
    flip: bool = True
    color_jitter: float = 0.3
    num_workers: int = 0
    checkpoint_every: int = 1000
    log_every: int = 50
    amp: bool = True
    channels_last: bool = True


@dataclass
class EpsConfig:
    tau: float = 0.4   # overlap threshold of the map selection
    lam: float = 0.5   # weight of the foreground map in the estimated saliency
    # Iterations trained with L_cls only before the saliency loss starts (paper: 0). From scratch
    # every softmax map starts near 1/(C+1), so no class reaches round(P_i) = 1 and all present
    # classes land in the background group, where L_sal pushes their maps down on the salient
    # object: on the toy data the small classes (kite, star) never recovered. A short warm-up lets
    # L_cls make the class maps peaked first.
    sal_warmup: int = 0
    # Present classes whose rounded softmax map is empty join neither group (wsss.losses: not
    # in the paper, which starts from ImageNet weights; needed from scratch).
    skip_unclaimed: bool = False


def _from_dict(cls, values: dict):
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - names
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys {sorted(unknown)}")
    return cls(**values)


def split_section(section: dict) -> tuple[ModelConfig, EpsConfig, TrainRecipe]:
    """The `classifier` config section (minus `infer`) → dataclasses."""
    model = _from_dict(ModelConfig, {k: section[k] for k in ("backbone", "width", "pretrained") if k in section})
    eps = _from_dict(EpsConfig, {k: section[k] for k in ("tau", "lam", "sal_warmup", "skip_unclaimed") if k in section})
    return model, eps, _from_dict(TrainRecipe, dict(section.get("train", {})))


def make_step(method: str, num_classes: int, eps: EpsConfig, class_names: list[str]):
    """The per-iteration loss: L_cls (+ L_sal for eps), plus the per-class foreground-selection rate.

    `fg_<class>`: the share of this batch's images containing the class whose map the EPS
    selection put in the foreground (NaN when the class is absent). A class stuck at 0 has
    collapsed onto the background (seen with τ 0.4 from scratch on the toy data).
    """

    def step(model, batch):
        net = model.module if hasattr(model, "module") else model
        maps = model(batch["image"])
        labels = batch["label"]
        l_cls = classification_loss(net.logits(maps), labels)
        out = {"loss": l_cls, "cls": l_cls.detach()}
        if method == "eps":
            l_sal, *_ = eps_loss(maps, batch["saliency"], labels, eps.tau, eps.lam, eps.skip_unclaimed)
            if batch.get("_step", eps.sal_warmup) >= eps.sal_warmup:
                out["loss"] = l_cls + l_sal
            out["sal"] = l_sal.detach()
            with torch.no_grad():
                probs = torch.softmax(maps.float(), 1)
                sal = torch.nn.functional.interpolate(batch["saliency"].float(), size=maps.shape[-2:],
                                                      mode="bilinear", align_corners=False)
                fg, _ = select_maps(probs, sal, labels, eps.tau, eps.skip_unclaimed)
                present = (labels > 0.5).sum(0)
                rate = fg.sum(0).float() / present.clamp(min=1)
                rate[present == 0] = math.nan
                for c, name in enumerate(class_names):
                    out[f"fg_{name}"] = rate[c]
        return out

    return step


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
    """Train the `method` classifier on the ids of `ids_file`; write `model_out`.

    `section` is the `classifier` config section. Returns the per-class foreground-selection
    rates (eps) for the caller's log.
    """
    if method not in ("cam", "eps"):
        raise ValueError(f"unknown classifier method '{method}'; choose cam or eps")
    if method == "eps" and saliency_dir is None:
        raise BadInputError("the eps classifier needs saliency maps: give saliency_dir (results/saliency/maps)")
    model_cfg, eps_cfg, recipe = split_section(section)
    class_names, _ = read_labels_csv(labels_csv)
    ids = read_id_list(ids_file)
    transform = TrainTransform(recipe.crop_size, tuple(recipe.scale_range) if recipe.scale_range else None,
                               recipe.flip, recipe.color_jitter)
    dataset = WSSSDataset(ids, images_dir, labels_csv, saliency_dir if method == "eps" else None,
                          transform=transform)
    torch.manual_seed(seed)  # model initialisation is part of the deterministic run
    model = build_classifier(method, len(class_names), model_cfg.backbone, model_cfg.pretrained, model_cfg.width)
    optimizer = torch.optim.SGD(model.param_groups(recipe.lr, recipe.weight_decay, recipe.head_lr_mult),
                                lr=recipe.lr, momentum=recipe.momentum)
    scheduler = poly_scheduler(optimizer, recipe.iterations, recipe.poly_power)
    run_config = {"method": method, "class_names": class_names, "model": dataclasses.asdict(model_cfg),
                  "eps": dataclasses.asdict(eps_cfg), "train": dataclasses.asdict(recipe), "seed": seed,
                  "num_train_ids": len(ids),
                  # Changed images, labels or saliency maps make Snakemake rerun this job: never
                  # resume a checkpoint trained on the old ones.
                  "data_sha1": files_fingerprint(
                      [labels_csv] + [f"{images_dir}/{i}.jpg" for i in ids]
                      + ([f"{saliency_dir}/{i}.png" for i in ids] if method == "eps" else []))}
    loop = LoopConfig(iterations=recipe.iterations, batch_size=recipe.batch_size, num_workers=recipe.num_workers,
                      checkpoint_every=recipe.checkpoint_every, log_every=recipe.log_every, seed=seed,
                      device=device, amp=recipe.amp, channels_last=recipe.channels_last)
    log.info("training %s classifier (%s backbone) on %d images for %d iterations", method,
             model_cfg.backbone, len(ids), recipe.iterations)
    model = train(model, optimizer, scheduler, dataset, make_step(method, len(class_names), eps_cfg, class_names),
                  loop, checkpoint, loss_csv, run_config)
    from wsss.train.loop import is_main_process

    if is_main_process():
        save_model(model_out, model, run_config)
    return _log_selection_rates(loss_csv, class_names) if (method == "eps" and loss_csv) else {}


def load_classifier(path: str | os.PathLike) -> tuple[LocalizationClassifier, dict]:
    """Rebuild a trained classifier from its model file (no pretrained weights are fetched)."""
    obj = load_model(path)
    cfg = obj["config"]
    try:
        m = cfg["model"]
        model = build_classifier(cfg["method"], len(cfg["class_names"]), m["backbone"], None, m["width"])
        model.load_state_dict(obj["model"])
    except (KeyError, RuntimeError) as err:
        raise BadInputError(f"{path}: not a classifier model file ({err}); re-run train_classifier") from err
    return model.eval(), cfg
